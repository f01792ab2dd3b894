"""The upload step: send a queued job's PDF (v1.1), commit the ticket at once, plan the poll.

Its own logic only; claiming, recording and scheduling follow `worker.step_runner`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from sqlmodel import Session

from api_client import DocumentType, UploadReceipt
from intake.storage import DocumentMissing
from models import JobState, UploadJob, change_state, record_note
from models import jobs as job_table
from models.errors import Decision
from scheduling import ledger
from scheduling.quota_policy import upload_must_wait
from worker.runtime import WorkerRuntime
from worker.step_runner import StepOutcome, Verdict, run_step

__all__ = [
    "EARLY_SLACK_SECONDS",
    "UploadStep",
    "take_back_lost_upload",
    "upload_call_started",
    "upload_job",
]

# A message may arrive this much before its job is due (clocks, countdown rounding).
EARLY_SLACK_SECONDS = 1.0


def upload_job(rt: WorkerRuntime, job_id: str) -> StepOutcome:
    """Upload a queued job's PDF (v1.1), commit the ticket at once, and schedule the first poll."""
    return run_step(rt, UploadStep(), job_id)


class UploadStep:
    """Queued -> uploading -> polling (a ticket), or back to queued, or failed."""

    noun: ClassVar[str] = "upload"
    call_kind: ClassVar[str] = "upload"
    held_state: ClassVar[JobState] = JobState.UPLOADING
    due_state: ClassVar[JobState] = JobState.QUEUED  # waiting for this step

    def claim(self, rt: WorkerRuntime, job_id: str, now: datetime) -> UploadJob | StepOutcome:
        # Read before the claim's lock: on SQLite a second connection would wait for it.
        lost_call = (
            upload_call_started(rt, job_id)
            if job_table.peek_state(rt.engine, job_id) is JobState.UPLOADING
            else False
        )
        priority = job_table.peek_queued_priority(rt.engine, job_id)
        if priority is not None:
            wait = upload_must_wait(rt.engine, rt.settings, priority=priority, now=now)
            if wait is not None:
                return _hold_queued(rt, job_id, wait.until, wait.reason)
        with job_table.locked_job(rt.engine, job_id) as (session, job):
            if job is None:
                return StepOutcome(job_id, "skipped: no such job")
            state = job.job_state
            if state is JobState.UPLOADING and job.lease_expires_at and job.lease_expires_at > now:
                return StepOutcome(job_id, f"skipped: being uploaded by {job.lease_owner}")
            if state is JobState.UPLOADING:
                take_back_lost_upload(session, job, now, call_started=lost_call)
                state = job.job_state
            if state is not JobState.QUEUED:
                return StepOutcome(job_id, f"skipped: already {state.value}")
            if job.not_before and job.not_before > now + timedelta(seconds=EARLY_SLACK_SECONDS):
                return StepOutcome(job_id, "skipped: not due yet")
            job.attempts += 1
            job.lease_owner = rt.owner
            job.lease_expires_at = now + timedelta(seconds=rt.settings.lease_seconds)
            job.not_before = None
            job.published_at = None
            change_state(
                session, job, JobState.UPLOADING, reason=f"upload attempt {job.attempts}", now=now
            )
            return job.model_copy()

    def call(self, rt: WorkerRuntime, job: UploadJob) -> UploadReceipt:
        path = rt.store.path(job.storage_key)
        if not path.is_file():
            raise DocumentMissing(f"stored document {job.storage_key} is missing")
        return rt.client.upload_document(
            job.tenant_id,
            job.person_code,
            DocumentType(job.document_type),
            path,
            description=job.description,
            valid_from=job.valid_from,
            filename=job.file_name,
        )

    def describe(self, answer: UploadReceipt) -> str:
        return f"the document arrived (ticket {answer.ticket_id})"

    def prepare(self, rt: WorkerRuntime, job: UploadJob) -> float:
        """The wait before the first poll, from the tenant's learned ticket times."""
        return rt.poll_planner.delay_before_poll(job.tenant_id, 0, 0.0)

    def record(
        self,
        rt: WorkerRuntime,
        session: Session,
        job: UploadJob | None,
        answer: UploadReceipt,
        prepared: float,
        now: datetime,
    ) -> str:
        receipt = answer
        if job is None:
            return "uploaded, but the job was deleted meanwhile"
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
            return f"duplicate upload recorded: ticket {receipt.ticket_id}"
        job.ticket_id = receipt.ticket_id
        job.uploaded_at = now
        job.poll_count = 0
        job.lease_owner = None
        job.lease_expires_at = None
        job.next_poll_at = now + timedelta(seconds=prepared)
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
        return f"uploaded: ticket {receipt.ticket_id}"

    def apply(
        self,
        rt: WorkerRuntime,
        session: Session,
        job: UploadJob,
        verdict: Verdict,
        prepared: float,
        now: datetime,
    ) -> str:
        doubt = ""
        if verdict.maybe_delivered or (
            verdict.decision is Decision.RELEASE and verdict.call_started
        ):
            job.uncertain_deliveries += 1
            doubt = (
                "; the upload may have arrived although no ticket came back (sending it "
                "again can put it in the personnel file twice)"
            )
        if verdict.decision is Decision.DEFER:
            assert verdict.until is not None
            if not verdict.call_started:
                job.attempts -= 1  # no call was made: not an attempt
            job.not_before = verdict.until
            change_state(
                session,
                job,
                JobState.QUEUED,
                reason=(
                    f"no API call available ({verdict.reason}); waiting until "
                    f"{verdict.until:%H:%M:%S}Z"
                ),
                now=now,
            )
            return f"deferred until {verdict.until.isoformat()}: {verdict.reason}"
        retries = verdict.decision in (Decision.RETRY, Decision.RELEASE)
        if retries and not rt.retry_policy.gives_up_after(job.attempts):
            delay = rt.retry_policy.delay(job.attempts, retry_after=verdict.retry_after)
            job.not_before = now + timedelta(seconds=delay)
            if verdict.decision is Decision.RELEASE:
                started = (
                    "its upload call had started"
                    if verdict.call_started
                    else "no upload call had started"
                )
                reason = (
                    f"upload attempt {job.attempts} stopped ({verdict.reason}; {started}); "
                    f"retrying in {delay:.1f}s{doubt}"
                )
            else:
                reason = f"upload attempt {job.attempts} failed; retrying in {delay:.1f}s{doubt}"
            change_state(
                session, job, JobState.QUEUED, reason=reason, now=now, **verdict.error_fields()
            )
            return f"upload will be retried in {delay:.1f}s: {verdict.reason}"
        if verdict.from_api or retries:
            why = "gave up" if retries else "permanent error"
            reason = f"upload attempt {job.attempts} failed ({why}){doubt}"
        else:
            reason = verdict.reason + doubt
        change_state(
            session, job, JobState.FAILED, reason=reason, now=now, **verdict.error_fields()
        )
        return f"failed: {verdict.reason}"


def upload_call_started(rt: WorkerRuntime, job_id: str) -> bool:
    """Whether the job's latest upload attempt had its upload call granted (the ledger names
    the job of every call): only then can a lost attempt have reached Youforce."""
    claimed_at = job_table.last_entered_at(rt.engine, job_id, JobState.UPLOADING)
    if claimed_at is None:
        return False
    return ledger.job_calls_since(rt.engine, job_id, kind="upload", since=claimed_at) > 0


def take_back_lost_upload(
    session: Session, job: UploadJob, now: datetime, *, call_started: bool
) -> None:
    """An upload whose worker vanished: send it again, and say in the history what that
    risks: a duplicate only if its upload call had started."""
    lost_owner = job.lease_owner or "?"
    job.lease_owner = None
    job.lease_expires_at = None
    job.published_at = None
    attempt = f"worker {lost_owner} lost during upload attempt {job.attempts} (lease expired)"
    if call_started:
        job.uncertain_deliveries += 1
        reason = (
            f"{attempt} after its upload call had started; uploading again. If that call "
            "reached Youforce, the document arrives twice"
        )
    else:
        reason = f"{attempt} before its upload call started; uploading again"
    change_state(session, job, JobState.QUEUED, reason=reason, now=now)


def _hold_queued(rt: WorkerRuntime, job_id: str, until: datetime, reason: str) -> StepOutcome:
    """Keep a queued job waiting until `until` (the dispatcher publishes it then)."""
    now = rt.clock()
    with job_table.locked_job(rt.engine, job_id) as (session, job):
        if job is None or job.job_state is not JobState.QUEUED:
            return StepOutcome(job_id, "skipped: not queued")
        job.not_before = until
        job.published_at = None
        record_note(session, job, reason=f"{reason} (until {until:%Y-%m-%d %H:%M}Z)", now=now)
    return StepOutcome(job_id, f"waiting until {until.isoformat()}: {reason}")
