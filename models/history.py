"""State changes that write their own audit trail: no transition without an event row."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from models.states import TERMINAL_STATES, JobState, check_transition
from models.tables import JobEvent, UploadJob
from models.types import utcnow

__all__ = ["change_state", "record_created", "record_note"]


def record_created(
    session: Session, job: UploadJob, *, reason: str, now: datetime | None = None
) -> JobEvent:
    """The first line of a job's history: it was accepted, in its initial state."""
    event = JobEvent(
        job_id=job.id, at=now or job.created_at, from_state=None, to_state=job.state, reason=reason
    )
    session.add(event)
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
    return _append_event(session, job, from_state.value, reason, http_status, correlation_id, now)


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
