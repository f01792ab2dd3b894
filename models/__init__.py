"""The record: the tables, the job state machine, engines, sessions and migrations, the one
module that queries the job tables (`models.jobs`), the one that queries the document
tables (`models.document_store`), and the error tree (`models.errors`).

May import: sqlmodel, SQLAlchemy and alembic. Imports nothing of the project's other rooms:
they all build on this, never the reverse.
"""

from __future__ import annotations

from models.db import make_engine, migrate, session_scope
from models.history import change_state, record_created, record_note
from models.states import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATES,
    IllegalTransition,
    JobState,
    Priority,
    check_transition,
)
from models.tables import ApiCall, JobEvent, TokenCacheEntry, UploadJob, new_job_id
from models.types import UTCDateTime, utcnow

__all__ = [
    "ALLOWED_TRANSITIONS",
    "TERMINAL_STATES",
    "ApiCall",
    "IllegalTransition",
    "JobEvent",
    "JobState",
    "Priority",
    "TokenCacheEntry",
    "UTCDateTime",
    "UploadJob",
    "change_state",
    "check_transition",
    "make_engine",
    "migrate",
    "new_job_id",
    "record_created",
    "record_note",
    "session_scope",
    "utcnow",
]
