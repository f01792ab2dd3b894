"""What the governor and the token cache know of the step whose calls they pace.

The step runner opens `calls_for(job_id, start_by=...)` around a step's API calls: every
call the governor grants is written into the ledger with the job's id (so the history can
say whether an upload call had started), and no wait for a slot or for another process's
token fetch runs past `start_by`, the step's last moment to start a call (see
`config.budgets`). A process that is stopping (`stopping.set()`, from the worker's signal
handler) ends every such wait at once with `WorkerStopping`: the job is handed back
without an attempt spent, instead of holding the worker's exit for half a minute.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from models.errors import Decision
from scheduling.deferrals import CallDeferred

__all__ = ["CallContext", "WorkerStopping", "calls_for", "current", "stopping"]

# Set once when this process begins to stop; never cleared (the process is on its way out).
stopping = threading.Event()


class WorkerStopping(CallDeferred):
    """The process is stopping: the wait for a call ended, and the job goes back at once."""

    decision = Decision.DEFER

    def __init__(self, now: datetime) -> None:
        super().__init__(now, "the worker is stopping")


@dataclass(frozen=True)
class CallContext:
    """The job the current calls are made for, and the last moment one may start."""

    job_id: str | None = None
    start_by: datetime | None = None


_NO_CONTEXT = CallContext()
_context: ContextVar[CallContext | None] = ContextVar("yfdocs_call_context", default=None)


def current() -> CallContext:
    """The context of the calls made now (empty outside a step)."""
    return _context.get() or _NO_CONTEXT


@contextlib.contextmanager
def calls_for(job_id: str | None, *, start_by: datetime | None) -> Iterator[None]:
    """Attribute the calls made inside to `job_id`, and start none after `start_by`."""
    token = _context.set(CallContext(job_id, start_by))
    try:
        yield
    finally:
        _context.reset(token)
