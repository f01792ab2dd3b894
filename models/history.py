"""State changes that write their own audit trail: no transition without an event row.

Each change of state (and a job's first state) also becomes one log line, written once
the transaction that holds it has committed, never for one rolled back: logger
`yfdocs.jobs`, level INFO, with the job id, tenant, state, attempt and correlationId as
record fields (`monitoring.logs` writes them as JSON fields).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from models.states import TERMINAL_STATES, JobState, check_transition
from models.tables import JobEvent, UploadJob
from models.types import utcnow

__all__ = ["STATE_LOGGER", "change_state", "record_created", "record_note"]

STATE_LOGGER = "yfdocs.jobs"
log = logging.getLogger(STATE_LOGGER)
_PENDING = "yfdocs_state_changes"  # key in Session.info: lines waiting for the commit


@dataclass(frozen=True)
class _StateLine:
    """One change of state, captured when it is made, logged when it is committed."""

    job_id: str
    tenant: str
    from_state: str | None
    state: str
    attempt: int
    correlation_id: str | None
    http_status: int | None
    reason: str

    def write(self) -> None:
        moved = f"{self.from_state} -> {self.state}" if self.from_state else self.state
        log.info(
            "job %s %s (tenant %s, attempt %d, correlationId %s): %s",
            self.job_id,
            moved,
            self.tenant,
            self.attempt,
            self.correlation_id or "-",
            self.reason,
            extra={
                "job_id": self.job_id,
                "tenant": self.tenant,
                "state": self.state,
                "from_state": self.from_state,
                "attempt": self.attempt,
                "correlation_id": self.correlation_id,
                "http_status": self.http_status,
            },
        )


def _remember(session: Session, job: UploadJob, event: JobEvent) -> None:
    pending: list[_StateLine] = session.info.setdefault(_PENDING, [])
    pending.append(
        _StateLine(
            job_id=job.id,
            tenant=job.tenant_id,
            from_state=event.from_state,
            state=event.to_state,
            attempt=event.attempt,
            correlation_id=event.correlation_id,
            http_status=event.http_status,
            reason=event.reason,
        )
    )


@sqlalchemy_event.listens_for(OrmSession, "after_commit")
def _log_committed_changes(session: OrmSession) -> None:
    for line in session.info.pop(_PENDING, []):
        line.write()


@sqlalchemy_event.listens_for(OrmSession, "after_soft_rollback")
def _forget_rolled_back_changes(session: OrmSession, *_: Any) -> None:
    session.info.pop(_PENDING, None)


def record_created(
    session: Session, job: UploadJob, *, reason: str, now: datetime | None = None
) -> JobEvent:
    """The first line of a job's history: it was accepted, in its initial state."""
    event = JobEvent(
        job_id=job.id,
        at=now or job.created_at,
        from_state=None,
        to_state=job.state,
        reason=reason,
        attempt=job.attempts,
    )
    session.add(event)
    _remember(session, job, event)
    return event


def change_state(
    session: Session,
    job: UploadJob,
    to_state: JobState,
    *,
    reason: str,
    http_status: int | None = None,
    correlation_id: str | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> JobEvent:
    """Move `job` to `to_state` (or raise `IllegalTransition`) and write the event row.

    `error` becomes the job's last error; a successful step clears it.
    """
    now = now or utcnow()
    from_state = job.job_state
    check_transition(job.id, from_state, to_state)
    job.state = to_state.value
    job.updated_at = now
    job.finished_at = now if to_state in TERMINAL_STATES else None
    job.last_error = error
    job.last_http_status = http_status if error is not None else None
    job.last_correlation_id = correlation_id if error is not None else None
    event = _append_event(session, job, from_state.value, reason, http_status, correlation_id, now)
    _remember(session, job, event)
    return event


def record_note(
    session: Session,
    job: UploadJob,
    *,
    reason: str,
    http_status: int | None = None,
    correlation_id: str | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> JobEvent:
    """A line of history without a change of state: a retry scheduled, a poll still pending."""
    now = now or utcnow()
    job.updated_at = now
    if error is not None:
        job.last_error = error
        job.last_http_status = http_status
        job.last_correlation_id = correlation_id
    return _append_event(session, job, job.state, reason, http_status, correlation_id, now)


def _append_event(
    session: Session,
    job: UploadJob,
    from_state: str,
    reason: str,
    http_status: int | None,
    correlation_id: str | None,
    now: datetime,
) -> JobEvent:
    """The event row for the job as it now stands (its state is the event's `to_state`)."""
    event = JobEvent(
        job_id=job.id,
        at=now,
        from_state=from_state,
        to_state=job.state,
        reason=reason,
        attempt=job.attempts,
        http_status=http_status,
        correlation_id=correlation_id,
    )
    session.add(job)
    session.add(event)
    return event
