"""Jobs held back because the token endpoint refused the app's credentials.

A refusal is remembered in the token cache with a wait that doubles per refusal (see
`api_client.tokens`); the jobs that met it wait exactly until then (their `not_before` or
`next_poll_at` is the refusal's `refused_until`), and nothing fails or spends an attempt.
When a worker starts with other credentials than the refused ones, the operator has fixed
them: the refusal is forgotten and its jobs go at once, without waiting out the hours.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from api_client import credentials_fingerprint
from config import Settings
from models import JobState, TokenCacheEntry, UploadJob, record_note

__all__ = ["release_credential_holds"]

log = logging.getLogger(__name__)

_cache = TokenCacheEntry.__table__  # type: ignore[attr-defined]


def release_credential_holds(engine: Engine, settings: Settings, now: datetime) -> int:
    """Forget refusals of other credentials than the configured ones and release their
    jobs; returns how many jobs were released."""
    if not settings.client_id or settings.client_secret is None:
        return 0
    ours = credentials_fingerprint(settings.client_id, settings.client_secret.get_secret_value())
    released = 0
    with Session(engine) as session:
        refusals = session.execute(
            select(_cache.c.cache_key, _cache.c.refused_until).where(
                _cache.c.refused_until > now, _cache.c.refused_credentials != ours
            )
        ).all()
        for key, held_until in refusals:
            held = session.scalars(
                select(UploadJob).where(
                    (
                        (col(UploadJob.state) == JobState.QUEUED.value)
                        & (col(UploadJob.not_before) == held_until)
                    )
                    | (
                        (col(UploadJob.state) == JobState.POLLING.value)
                        & (col(UploadJob.next_poll_at) == held_until)
                    )
                )
            ).all()
            for job in held:
                if job.job_state is JobState.QUEUED:
                    job.not_before = now
                else:
                    job.next_poll_at = now
                job.published_at = None
                record_note(
                    session,
                    job,
                    reason="a worker started with new credentials: no longer waiting for the "
                    "token endpoint's refusal to lapse",
                    now=now,
                )
                session.add(job)
                released += 1
            session.execute(
                update(_cache)
                .where(_cache.c.cache_key == key)
                .values(
                    refused_at=None,
                    refused_until=None,
                    refused_reason=None,
                    refused_credentials=None,
                    refusals=0,
                )
            )
            log.warning("credentials changed: forgot the refusal for %s", key)
        session.commit()
    return released
