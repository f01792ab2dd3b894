"""The worker's work as plain functions: upload a job, poll its ticket, send it again.

Tasks in `worker.tasks` are thin adapters around these. Each step follows one pattern:
claim the job in a short transaction (state and lease), call the API outside any
transaction, record the outcome in a second short transaction, and only after that commit
publish the next message. A step that finds the job already beyond it does nothing, so a
duplicated or late message is harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api_client import CredentialsRejectedError, DocumentType, TicketState, YouforceError
from messaging import JobPublisher, PublishError
from models import (
    TERMINAL_STATES,
    JobState,
    UploadJob,
    change_state,
    record_note,
    session_scope,
)
from scheduling.governor import CallDeferred
from scheduling.quota_policy import upload_must_wait
from worker.runtime import WorkerRuntime

__all__ = [
    "EARLY_POLL_SLACK_SECONDS",
    "JobNotRetryable",
    "StepOutcome",
    "poll_job",
    "retry_job",
    "upload_job",
]

log = logging.getLogger(__name__)

EARLY_POLL_SLACK_SECONDS = 1.0


@dataclass(frozen=True)
class StepOutcome:
    """What a step did, in words for the task's log line and Flower's result column."""

    job_id: str
    action: str

    def __str__(self) -> str:
        return f"{self.job_id}: {self.action}"


class JobNotRetryable(Exception):
    """`yfdocs retry` was asked for a job that is not failed or expired, or cannot be sent."""


def _locked_job(session: Session, job_id: str) -> UploadJob | None:
    """The job row, locked for this transaction (PostgreSQL; SQLite's BEGIN IMMEDIATE locks all)."""
    statement = select(UploadJob).where(UploadJob.id == job_id).with_for_update()
    return session.exec(statement).first()


def _released_job(session: Session, job_id: str, state: JobState, owner: str) -> UploadJob | None:
    """The job if this worker still holds it in `state`, with its lease given back; else None.

    None means the lease was lost meanwhile (the sweeper took the job back): the outcome
    in hand is no longer this worker's to record.
    """
    job = _locked_job(session, job_id)
    if job is None or job.job_state is not state or job.lease_owner != owner:
        return None
    job.lease_owner = None
    job.lease_expires_at = None
    return job


class _ErrorFields(TypedDict):
    error: str
    http_status: int | None
    correlation_id: str | None


def _error_fields(exc: YouforceError) -> _ErrorFields:
    """The columns an API error leaves on the job and its event (never a token)."""
    return {
        "error": str(exc),
        "http_status": exc.status_code,
        "correlation_id": exc.correlation_id,
    }


# --- upload -------------------------------------------------------------------------------


def upload_job(rt: WorkerRuntime, job_id: str) -> StepOutcome:
    """Upload a queued job's PDF (v1.1), commit the ticket at once, and schedule the first poll."""
    now = rt.clock()
    with session_scope(rt.engine) as session:
        found = session.exec(
            select(UploadJob.priority, UploadJob.state).where(UploadJob.id == job_id)
        ).first()
    if found is not None and found[1] == JobState.QUEUED.value:
        # Read before the claim: on SQLite a second connection would wait for our lock.
        wait = upload_must_wait(rt.engine, rt.settings, priority=found[0], now=now)
        if wait is not None:
            return _hold_queued(rt, job_id, wait.until, wait.reason)
    with session_scope(rt.engine) as session:
        job = _locked_job(session, job_id)
        if job is None:
            return StepOutcome(job_id, "skipped: no such job")
        state = job.job_state
        if state is JobState.UPLOADING and job.lease_expires_at and job.lease_expires_at > now:
            return StepOutcome(job_id, f"skipped: being uploaded by {job.lease_owner}")
        if state is JobState.UPLOADING:
            _take_back_lost_upload(session, job, now)
            state = job.job_state
        if state is not JobState.QUEUED:
            return StepOutcome(job_id, f"skipped: already {state.value}")
        if job.not_before and job.not_before > now + timedelta(seconds=EARLY_POLL_SLACK_SECONDS):
            return StepOutcome(job_id, "skipped: not due yet")
        job.attempts += 1
        job.lease_owner = rt.owner
        job.lease_expires_at = now + timedelta(seconds=rt.settings.lease_seconds)
        job.not_before = None
        job.published_at = None
        change_state(
            session, job, JobState.UPLOADING, reason=f"upload attempt {job.attempts}", now=now
        )
        job_snapshot = job.model_copy()

    path = rt.store.path(job_snapshot.storage_key)
    if not path.is_file():
        return _fail_upload(rt, job_id, f"stored document {job_snapshot.storage_key} is missing")
    try:
        receipt = rt.client.upload_document(
            job_snapshot.tenant_id,
            job_snapshot.person_code,
            DocumentType(job_snapshot.document_type),
            path,
            description=job_snapshot.description,
            valid_from=job_snapshot.valid_from,
            filename=job_snapshot.file_name,
        )
    except CallDeferred as exc:
        return _defer_upload(rt, job_id, exc)
    except CredentialsRejectedError as exc:
        return _defer_upload(rt, job_id, _credentials_wait(rt, exc))
    except YouforceError as exc:
        return _upload_error(rt, job_id, exc)

    now = rt.clock()
    first_delay = rt.poll_planner.delay_before_poll(job_snapshot.tenant_id, 0, 0.0)
    with session_scope(rt.engine) as session:
        job = _locked_job(session, job_id)
        if job is None:
            return StepOutcome(job_id, "uploaded, but the job was deleted meanwhile")
        if job.job_state is JobState.QUEUED:
            change_state(
                session,
                job,
                JobState.UPLOADING,
                reason="the upload answered after its lease had been taken back",
                now=now,
            )
        if job.job_state is not JobState.UPLOADING:
            record_note(
                session,
                job,
                reason=(
                    f"another upload attempt also delivered this document: ticket "
                    f"{receipt.ticket_id} (duplicate in the personnel file)"
                ),
                correlation_id=receipt.correlation_id,
                now=now,
            )
            return StepOutcome(job_id, f"duplicate upload recorded: ticket {receipt.ticket_id}")
        job.ticket_id = receipt.ticket_id
        job.uploaded_at = now
        job.poll_count = 0
        job.lease_owner = None
        job.lease_expires_at = None
        job.next_poll_at = now + timedelta(seconds=first_delay)
        job.published_at = None
        change_state(
            session,
            job,
            JobState.POLLING,
            reason=f"uploaded: ticket {receipt.ticket_id}",
            http_status=200,
            correlation_id=receipt.correlation_id,
            now=now,
        )
        next_poll_at = job.next_poll_at
    _schedule(rt, job_id, JobState.POLLING, next_poll_at, first_delay)
    return StepOutcome(job_id, f"uploaded: ticket {receipt.ticket_id}")


def _credentials_wait(rt: WorkerRuntime, exc: CredentialsRejectedError) -> CallDeferred:
    """A refusal of the app's credentials is the fleet's problem, not the job's: the job
    waits (no attempt spent) until the fleet may ask again, or a worker with new ones starts."""
    until = exc.retry_at or rt.clock() + timedelta(seconds=rt.settings.credentials_retry)
    answer = exc.api_message or exc.error_code or "refused"
    return CallDeferred(
        until,
        f"the token endpoint refused the app's credentials ({answer}); set "
        "YFDOCS_CLIENT_ID and YFDOCS_CLIENT_SECRET right and restart the workers",
    )


def _take_back_lost_upload(session: Session, job: UploadJob, now: datetime) -> None:
    """An upload whose worker vanished: send it again, and say in the history what that risks."""
    job.lease_owner = None
    job.lease_expires_at = None
    change_state(
        session,
        job,
        JobState.QUEUED,
        reason=(
            f"worker lost during upload attempt {job.attempts} (lease expired); uploading again. "
            "If the lost attempt reached Youforce, the document arrives twice"
        ),
        now=now,
    )


def _hold_queued(rt: WorkerRuntime, job_id: str, until: datetime, reason: str) -> StepOutcome:
    """Keep a queued job waiting until `until` (the sweeper publishes it then)."""
    now = rt.clock()
    with session_scope(rt.engine) as session:
        job = _locked_job(session, job_id)
        if job is None or job.job_state is not JobState.QUEUED:
            return StepOutcome(job_id, "skipped: not queued")
        job.not_before = until
        job.published_at = None
        record_note(session, job, reason=f"{reason} (until {until:%Y-%m-%d %H:%M}Z)", now=now)
    _schedule(rt, job_id, JobState.QUEUED, until, (until - now).total_seconds())
    return StepOutcome(job_id, f"waiting until {until.isoformat()}: {reason}")


def _defer_upload(rt: WorkerRuntime, job_id: str, exc: CallDeferred) -> StepOutcome:
    """The governor had no call for us (quota spent, fleet backing off): wait, don't fail."""
    now = rt.clock()
    with session_scope(rt.engine) as session:
        job = _released_job(session, job_id, JobState.UPLOADING, rt.owner)
        if job is None:
            return StepOutcome(job_id, f"deferred after its lease was lost: {exc.reason}")
        job.attempts -= 1  # no call was made: not an attempt
        job.not_before = exc.until
        change_state(
            session,
            job,
            JobState.QUEUED,
            reason=f"no API call available ({exc.reason}); waiting until {exc.until:%H:%M:%S}Z",
            now=now,
        )
    _schedule(rt, job_id, JobState.QUEUED, exc.until, (exc.until - now).total_seconds())
    return StepOutcome(job_id, f"deferred until {exc.until.isoformat()}: {exc.reason}")


def _upload_error(rt: WorkerRuntime, job_id: str, exc: YouforceError) -> StepOutcome:
    """A failed upload: back to the queue with a backoff when transient, else `failed`."""
    now = rt.clock()
    with session_scope(rt.engine) as session:
        job = _released_job(session, job_id, JobState.UPLOADING, rt.owner)
        if job is None:
            return StepOutcome(job_id, f"upload failed after its lease was lost: {exc}")
        if exc.retryable and not rt.retry_policy.gives_up_after(job.attempts):
            delay = rt.retry_policy.delay(job.attempts, retry_after=exc.retry_after)
            job.not_before = now + timedelta(seconds=delay)
            change_state(
                session,
                job,
                JobState.QUEUED,
                reason=f"upload attempt {job.attempts} failed; retrying in {delay:.1f}s",
                now=now,
                **_error_fields(exc),
            )
            not_before = job.not_before
        else:
            verdict = "permanent error" if not exc.retryable else "gave up"
            change_state(
                session,
                job,
                JobState.FAILED,
                reason=f"upload attempt {job.attempts} failed ({verdict})",
                now=now,
                **_error_fields(exc),
            )
            return StepOutcome(job_id, f"failed: {exc}")
    _schedule(rt, job_id, JobState.QUEUED, not_before, delay)
    return StepOutcome(job_id, f"upload will be retried in {delay:.1f}s: {exc}")


def _fail_upload(rt: WorkerRuntime, job_id: str, reason: str) -> StepOutcome:
    with session_scope(rt.engine) as session:
        job = _released_job(session, job_id, JobState.UPLOADING, rt.owner)
        if job is None:
            return StepOutcome(job_id, f"not failed ({reason}): job moved on")
        change_state(session, job, JobState.FAILED, reason=reason, error=reason, now=rt.clock())
    return StepOutcome(job_id, f"failed: {reason}")


# --- poll ---------------------------------------------------------------------------------


def poll_job(rt: WorkerRuntime, job_id: str) -> StepOutcome:
    """Ask Youforce about a job's ticket and record the answer, or schedule the next poll."""
    now = rt.clock()
    with session_scope(rt.engine) as session:
        job = _locked_job(session, job_id)
        if job is None:
            return StepOutcome(job_id, "skipped: no such job")
        if job.job_state is not JobState.POLLING or job.ticket_id is None:
            return StepOutcome(job_id, f"skipped: {job.state}")
        if job.lease_expires_at and job.lease_expires_at > now:
            return StepOutcome(job_id, f"skipped: being polled by {job.lease_owner}")
        early_limit = now + timedelta(seconds=EARLY_POLL_SLACK_SECONDS)
        if job.next_poll_at and job.next_poll_at > early_limit:
            return StepOutcome(job_id, "skipped: not due yet")
        job.poll_count += 1
        job.lease_owner = rt.owner
        job.lease_expires_at = now + timedelta(seconds=rt.settings.lease_seconds)
        job.published_at = None
        session.add(job)
        snapshot = job.model_copy()
    assert snapshot.ticket_id is not None

    try:
        status = rt.client.ticket_status(snapshot.tenant_id, snapshot.ticket_id)
    except CallDeferred as exc:
        return _defer_poll(rt, job_id, exc)
    except CredentialsRejectedError as exc:
        return _defer_poll(rt, job_id, _credentials_wait(rt, exc))
    except YouforceError as exc:
        return _poll_error(rt, job_id, snapshot.tenant_id, exc)

    durations = rt.poll_planner.model_for(snapshot.tenant_id)  # read before the transaction
    now = rt.clock()
    with session_scope(rt.engine) as session:
        job = _released_job(session, job_id, JobState.POLLING, rt.owner)
        if job is None:
            return StepOutcome(job_id, "poll answered after its lease was lost")
        ticket = job.ticket_id
        if status.state is TicketState.COMPLETE:
            change_state(
                session, job, JobState.COMPLETE, reason=f"ticket {ticket}: {status.name}", now=now
            )
            return StepOutcome(job_id, "complete")
        if status.state is TicketState.FAILED:
            messages = "; ".join(status.error_messages) or "no message"
            change_state(
                session,
                job,
                JobState.FAILED,
                reason=f"ticket {ticket}: {status.name}: {messages}",
                error=f"Youforce rejected the document ({status.name}): {messages}",
                now=now,
            )
            return StepOutcome(job_id, f"failed: {status.name}")
        deadline = _poll_deadline(rt, job)
        if now >= deadline:
            seconds = rt.settings.poll_deadline
            change_state(
                session,
                job,
                JobState.EXPIRED,
                reason=f"ticket {ticket} still {status.name} {seconds:.0f}s after upload",
                error=f"gave up waiting for ticket {ticket} after {seconds:.0f}s",
                now=now,
            )
            return StepOutcome(job_id, "expired")
        job.last_in_progress_at = now
        delay = rt.poll_planner.delay_with(
            durations, job.poll_count, _seconds_since_upload(job, now)
        )
        job.next_poll_at = min(now + timedelta(seconds=delay), deadline)
        delay = (job.next_poll_at - now).total_seconds()
        record_note(
            session,
            job,
            reason=f"ticket {ticket} still {status.name} (poll {job.poll_count}); "
            f"next in {delay:.1f}s",
            now=now,
        )
        next_poll_at = job.next_poll_at
    _schedule(rt, job_id, JobState.POLLING, next_poll_at, delay)
    return StepOutcome(job_id, f"in progress; next poll in {delay:.1f}s")


def _defer_poll(rt: WorkerRuntime, job_id: str, exc: CallDeferred) -> StepOutcome:
    """No API call available for this status check: ask again when there is one."""
    now = rt.clock()
    with session_scope(rt.engine) as session:
        job = _released_job(session, job_id, JobState.POLLING, rt.owner)
        if job is None:
            return StepOutcome(job_id, f"deferred after its lease was lost: {exc.reason}")
        job.poll_count -= 1  # no call was made
        job.next_poll_at = exc.until
        record_note(
            session,
            job,
            reason=f"no API call available ({exc.reason}); next status check at "
            f"{exc.until:%H:%M:%S}Z",
            now=now,
        )
    _schedule(rt, job_id, JobState.POLLING, exc.until, (exc.until - now).total_seconds())
    return StepOutcome(job_id, f"poll deferred until {exc.until.isoformat()}: {exc.reason}")


def _seconds_since_upload(job: UploadJob, now: datetime) -> float:
    return (now - (job.uploaded_at or job.created_at)).total_seconds()


def _poll_deadline(rt: WorkerRuntime, job: UploadJob) -> datetime:
    started = job.uploaded_at or job.created_at
    return started + timedelta(seconds=rt.settings.poll_deadline)


def _poll_error(rt: WorkerRuntime, job_id: str, tenant_id: str, exc: YouforceError) -> StepOutcome:
    """A failed status check: poll again later when transient, else the job `failed`."""
    durations = rt.poll_planner.model_for(tenant_id)  # read before the transaction
    now = rt.clock()
    with session_scope(rt.engine) as session:
        job = _released_job(session, job_id, JobState.POLLING, rt.owner)
        if job is None:
            return StepOutcome(job_id, f"poll failed after its lease was lost: {exc}")
        if not exc.retryable:
            change_state(
                session,
                job,
                JobState.FAILED,
                reason=f"status check of ticket {job.ticket_id} failed (permanent error)",
                now=now,
                **_error_fields(exc),
            )
            return StepOutcome(job_id, f"failed: {exc}")
        if now >= _poll_deadline(rt, job):
            change_state(
                session,
                job,
                JobState.EXPIRED,
                reason=f"status checks of ticket {job.ticket_id} still failing at the deadline",
                now=now,
                **_error_fields(exc),
            )
            return StepOutcome(job_id, "expired")
        planned = rt.poll_planner.delay_with(
            durations, job.poll_count, _seconds_since_upload(job, now)
        )
        delay = max(planned, exc.retry_after or 0.0)
        job.next_poll_at = now + timedelta(seconds=delay)
        record_note(
            session,
            job,
            reason=f"status check failed; next in {delay:.1f}s",
            now=now,
            **_error_fields(exc),
        )
        next_poll_at = job.next_poll_at
    _schedule(rt, job_id, JobState.POLLING, next_poll_at, delay)
    return StepOutcome(job_id, f"status check failed, next in {delay:.1f}s: {exc}")


# --- scheduling and retry -----------------------------------------------------------------


def _schedule(
    rt: WorkerRuntime, job_id: str, state: JobState, due_at: datetime | None, delay: float
) -> None:
    """Publish the next step if it is due within `max_countdown`; longer waits stay in the DB.

    The message goes out after the commit (outbox). `published_at` is set only if the job
    still waits for this very step, so a late update cannot hide a newer one from the sweeper.
    """
    if delay > rt.settings.max_countdown:
        return
    countdown = max(0.0, delay)
    try:
        if state is JobState.POLLING:
            rt.publisher.publish_poll(job_id, countdown=countdown)
        else:
            rt.publisher.publish_upload(job_id, countdown=countdown)
    except PublishError:
        return  # the sweeper publishes it when due
    due_column = (
        col(UploadJob.next_poll_at) if state is JobState.POLLING else col(UploadJob.not_before)
    )
    with session_scope(rt.engine) as session:
        session.execute(
            update(UploadJob)
            .where(col(UploadJob.id) == job_id, col(UploadJob.state) == state.value)
            .where(due_column == due_at)
            .values(published_at=rt.clock())
        )


def retry_job(
    engine: Engine, publisher: JobPublisher, job_id: str, *, now: datetime, reason: str
) -> UploadJob:
    """Send a failed or expired job again from the start; raises `JobNotRetryable` otherwise."""
    with session_scope(engine) as session:
        job = _locked_job(session, job_id)
        if job is None:
            raise JobNotRetryable(f"no job {job_id}")
        if job.job_state not in TERMINAL_STATES - {JobState.COMPLETE}:
            raise JobNotRetryable(
                f"job {job_id} is {job.state}; only failed or expired jobs can be retried"
            )
        if job.document_deleted_at is not None:
            raise JobNotRetryable(
                f"job {job_id}: its stored PDF was deleted after the retention period; "
                "enqueue the document again"
            )
        job.attempts = 0
        job.poll_count = 0
        job.ticket_id = None
        job.uploaded_at = None
        job.next_poll_at = None
        job.not_before = None
        job.published_at = None
        change_state(session, job, JobState.QUEUED, reason=reason, now=now)
    try:
        publisher.publish_upload(job_id)
    except PublishError:
        log.warning("job %s is queued again; the sweeper will publish it", job_id)
    else:
        with session_scope(engine) as session:
            session.execute(
                update(UploadJob)
                .where(col(UploadJob.id) == job_id, col(UploadJob.state) == JobState.QUEUED.value)
                .values(published_at=now)
            )
    return job
