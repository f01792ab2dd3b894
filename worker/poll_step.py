"""The poll step: ask Youforce about a job's ticket; record the answer or plan the next poll.

Its own logic only; claiming, recording and scheduling follow `worker.step_runner`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from sqlmodel import Session

from api_client import TicketState, TicketStatus
from models import JobState, UploadJob, change_state, record_note
from models import jobs as job_table
from models.errors import Decision
from scheduling.policy.poll_plan import TicketDurationModel
from worker.runtime import WorkerRuntime
from worker.step_runner import StepOutcome, Verdict, run_step
from worker.upload_step import EARLY_SLACK_SECONDS

__all__ = ["PollStep", "poll_job"]


def poll_job(rt: WorkerRuntime, job_id: str) -> StepOutcome:
    """Ask Youforce about a job's ticket and record the answer, or schedule the next poll."""
    return run_step(rt, PollStep(), job_id)


def _seconds_since_upload(job: UploadJob, now: datetime) -> float:
    return (now - (job.uploaded_at or job.created_at)).total_seconds()


def _poll_deadline(rt: WorkerRuntime, job: UploadJob) -> datetime:
    started = job.uploaded_at or job.created_at
    return started + timedelta(seconds=rt.settings.poll_deadline)


class PollStep:
    """Polling -> complete, failed or expired, or polling again later."""

    noun: ClassVar[str] = "poll"
    call_kind: ClassVar[str] = "status"
    held_state: ClassVar[JobState] = JobState.POLLING
    due_state: ClassVar[JobState] = JobState.POLLING  # waiting for this step

    def claim(self, rt: WorkerRuntime, job_id: str, now: datetime) -> UploadJob | StepOutcome:
        with job_table.locked_job(rt.engine, job_id) as (_, job):
            if job is None:
                return StepOutcome(job_id, "skipped: no such job")
            if job.job_state is not JobState.POLLING or job.ticket_id is None:
                return StepOutcome(job_id, f"skipped: {job.state}")
            if job.lease_expires_at and job.lease_expires_at > now:
                return StepOutcome(job_id, f"skipped: being polled by {job.lease_owner}")
            early_limit = now + timedelta(seconds=EARLY_SLACK_SECONDS)
            if job.next_poll_at and job.next_poll_at > early_limit:
                return StepOutcome(job_id, "skipped: not due yet")
            job.poll_count += 1
            job.lease_owner = rt.owner
            job.lease_expires_at = now + timedelta(seconds=rt.settings.lease_seconds)
            job.published_at = None
            return job.model_copy()

    def call(self, rt: WorkerRuntime, job: UploadJob) -> TicketStatus:
        assert job.ticket_id is not None
        return rt.client.ticket_status(job.tenant_id, job.ticket_id)

    def describe(self, answer: TicketStatus) -> str:
        return f"the ticket answered {answer.name}"

    def prepare(self, rt: WorkerRuntime, job: UploadJob) -> TicketDurationModel:
        """The tenant's learned ticket times, for planning the next poll."""
        return rt.poll_planner.model_for(job.tenant_id)

    def record(
        self,
        rt: WorkerRuntime,
        session: Session,
        job: UploadJob | None,
        answer: TicketStatus,
        prepared: TicketDurationModel,
        now: datetime,
    ) -> str:
        status = answer
        if job is None or not job_table.release_if_held(job, JobState.POLLING, rt.owner):
            return "poll answered after its lease was lost"
        ticket = job.ticket_id
        if status.state is TicketState.COMPLETE:
            change_state(
                session, job, JobState.COMPLETE, reason=f"ticket {ticket}: {status.name}", now=now
            )
            return "complete"
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
            return f"failed: {status.name}"
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
            return "expired"
        job.last_in_progress_at = now
        delay = rt.poll_planner.delay_with(
            prepared, job.poll_count, _seconds_since_upload(job, now)
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
        return f"in progress; next poll in {delay:.1f}s"

    def apply(
        self,
        rt: WorkerRuntime,
        session: Session,
        job: UploadJob,
        verdict: Verdict,
        prepared: TicketDurationModel,
        now: datetime,
    ) -> str:
        if verdict.decision is Decision.DEFER:
            assert verdict.until is not None
            if not verdict.call_started:
                job.poll_count -= 1  # no call was made
            job.next_poll_at = verdict.until
            record_note(
                session,
                job,
                reason=f"no API call available ({verdict.reason}); next status check at "
                f"{verdict.until:%H:%M:%S}Z",
                now=now,
            )
            return f"poll deferred until {verdict.until.isoformat()}: {verdict.reason}"
        if verdict.decision is Decision.RELEASE:
            return self._released(rt, session, job, verdict, now)
        if verdict.decision is not Decision.RETRY:
            reason = (
                f"status check of ticket {job.ticket_id} failed (permanent error)"
                if verdict.from_api
                else verdict.reason
            )
            change_state(
                session, job, JobState.FAILED, reason=reason, now=now, **verdict.error_fields()
            )
            return f"failed: {verdict.reason}"
        if now >= _poll_deadline(rt, job):
            change_state(
                session,
                job,
                JobState.EXPIRED,
                reason=f"status checks of ticket {job.ticket_id} still failing at the deadline",
                now=now,
                **verdict.error_fields(),
            )
            return "expired"
        planned = rt.poll_planner.delay_with(
            prepared, job.poll_count, _seconds_since_upload(job, now)
        )
        delay = max(planned, verdict.retry_after or 0.0)
        job.next_poll_at = now + timedelta(seconds=delay)
        record_note(
            session,
            job,
            reason=f"status check failed; next in {delay:.1f}s",
            now=now,
            **verdict.error_fields(),
        )
        return f"status check failed, next in {delay:.1f}s: {verdict.reason}"

    def _released(
        self, rt: WorkerRuntime, session: Session, job: UploadJob, verdict: Verdict, now: datetime
    ) -> str:
        """The status check stopped for a reason of the service's own: ask again soon (and
        expire at the deadline as ever); the history says whether the call had gone out."""
        if not verdict.call_started:
            job.poll_count -= 1
        delay = rt.retry_policy.delay(max(1, job.poll_count))
        job.next_poll_at = min(now + timedelta(seconds=delay), _poll_deadline(rt, job))
        started = "its status call had started" if verdict.call_started else "no call was made"
        record_note(
            session,
            job,
            reason=f"status check stopped ({verdict.reason}; {started}); next in {delay:.1f}s",
            now=now,
            error=verdict.reason,
        )
        return f"status check stopped, next in {delay:.1f}s: {verdict.reason}"
