"""One step runner for every job step: claim, call the API, record the outcome, schedule.

As dramatiq's middleware wraps every actor, this wraps the upload and the poll step, which
then hold only their own logic (`worker.upload_step`, `worker.poll_step`):

1. **claim** the job in a short transaction (its state and a lease), or skip it;
2. **call** the API outside any transaction;
3. **record** the outcome with its event in a second short transaction; when the call
   raised, first turn the exception into a `Verdict` (`verdict_for`, a table kept as data,
   as procrastinate's `RetryStrategy.get_retry_decision`), and let the step apply it;
4. leave what follows to the dispatcher: the outcome records when the next step is due
   (`not_before`, `next_poll_at`), and `worker.dispatcher` publishes it then, in the
   fleet's order of work. No step publishes, and no message waits in the broker for a
   countdown.

A step that finds the job already beyond it does nothing, so a duplicated or late message
is harmless; an outcome that arrives after the job's lease was taken back is not recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlmodel import Session

from api_client import (
    CredentialsRejectedError,
    ResponseFormatError,
    ServerError,
    TransportError,
    YouforceError,
)
from models import JobState, UploadJob
from models import jobs as job_table
from models.errors import Decision, YfdocsError
from scheduling import call_context, ledger
from scheduling.deferrals import CallDeferred
from worker.runtime import WorkerRuntime

__all__ = [
    "DECISION_RULES",
    "Step",
    "StepOutcome",
    "Verdict",
    "run_step",
    "verdict_for",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepOutcome:
    """What a step did, in words for the task's log line and Flower's result column.

    `moved_to` is the state the step's recorded outcome moved the job to; None when the
    step left the job as it found it (a skip, a note, a wait), so a task can tell the step
    that failed a job from a late message that merely found it failed.
    """

    job_id: str
    action: str
    moved_to: JobState | None = None

    def __str__(self) -> str:
        return f"{self.job_id}: {self.action}"


@dataclass(frozen=True)
class Verdict:
    """What an exception from a step's call means for the job (see `models.errors`).

    `reason` is the cause in words; `until` is when a deferred job looks again;
    `retry_after` what the server asked for; the HTTP status and correlationId go on the
    job and its event; `from_api` says the API answered (or failed to), not the service;
    `maybe_delivered` that the request may have reached the API although no answer says so
    (a read timeout, a dropped connection, a 5xx or a malformed 2xx after the body was
    sent); `call_started` that the step's own API call had been let go (from the ledger).
    """

    decision: Decision
    reason: str
    until: datetime | None = None
    retry_after: float | None = None
    http_status: int | None = None
    correlation_id: str | None = None
    from_api: bool = False
    maybe_delivered: bool = False
    call_started: bool = False

    def error_fields(self) -> dict[str, Any]:
        """The columns the failure leaves on the job and its event (never a token)."""
        return {
            "error": self.reason,
            "http_status": self.http_status,
            "correlation_id": self.correlation_id,
        }


def _api_error(exc: BaseException, rt: WorkerRuntime) -> Verdict:
    assert isinstance(exc, YouforceError)
    return Verdict(
        Decision.RETRY if exc.retryable else Decision.FAIL,
        str(exc),
        retry_after=exc.retry_after,
        http_status=exc.status_code,
        correlation_id=exc.correlation_id,
        from_api=True,
        maybe_delivered=_may_have_arrived(exc),
    )


def _may_have_arrived(exc: YouforceError) -> bool:
    """Whether the request may have reached the API although no answer says so."""
    if isinstance(exc, TransportError):
        return exc.maybe_delivered
    return isinstance(exc, ServerError | ResponseFormatError)


def _credentials_refused(exc: BaseException, rt: WorkerRuntime) -> Verdict:
    """A refusal of the app's credentials is the fleet's problem, not the job's: the job
    waits (no attempt spent) until the fleet may ask again, or a worker with new ones starts."""
    assert isinstance(exc, CredentialsRejectedError)
    until = exc.retry_at or rt.clock() + timedelta(seconds=rt.settings.credentials_retry)
    answer = exc.api_message or exc.error_code or "refused"
    return Verdict(
        Decision.DEFER,
        f"the token endpoint refused the app's credentials ({answer}); set "
        "YFDOCS_CLIENT_ID and YFDOCS_CLIENT_SECRET right and restart the workers",
        until=until,
    )


def _deferred(exc: BaseException, rt: WorkerRuntime) -> Verdict:
    assert isinstance(exc, CallDeferred)
    return Verdict(Decision.DEFER, exc.reason, until=exc.until)


def _own_error(exc: BaseException, rt: WorkerRuntime) -> Verdict:
    assert isinstance(exc, YfdocsError)
    return Verdict(exc.decision, str(exc))


# The mapping from an exception to what happens to the job: the first rule whose class the
# exception is an instance of decides (so the more specific classes come first).
Rule = Callable[[BaseException, WorkerRuntime], Verdict]
DECISION_RULES: tuple[tuple[type[BaseException], Rule], ...] = (
    (CallDeferred, _deferred),
    (CredentialsRejectedError, _credentials_refused),
    (YouforceError, _api_error),
    (YfdocsError, _own_error),
)


def verdict_for(exc: BaseException, rt: WorkerRuntime) -> Verdict | None:
    """The verdict on `exc` by `DECISION_RULES`; None for an exception no rule names."""
    for kind, rule in DECISION_RULES:
        if isinstance(exc, kind):
            return rule(exc, rt)
    return None


class Step(Protocol):
    """One kind of job step. The runner calls these in order; each `record` and `apply`
    runs inside the outcome's transaction, with the job row locked."""

    held_state: ClassVar[JobState]
    due_state: ClassVar[JobState]  # the state a job waits in for this step
    noun: ClassVar[str]  # "upload", "poll": for the outcome's words
    call_kind: ClassVar[str]  # the ledger's kind of the step's own call: "upload", "status"

    def describe(self, answer: Any) -> str:
        """A successful answer in words, for a history line when it cannot be recorded."""
        ...

    def claim(self, rt: WorkerRuntime, job_id: str, now: datetime) -> UploadJob | StepOutcome:
        """Take the job (state and lease) and return a snapshot of it, or say why not."""
        ...

    def call(self, rt: WorkerRuntime, job: UploadJob) -> Any:
        """Make the API call; its exceptions become a `Verdict`."""
        ...

    def prepare(self, rt: WorkerRuntime, job: UploadJob) -> Any:
        """Read what recording needs before its transaction opens (SQLite would make a
        second connection wait for the outcome's lock)."""
        ...

    def record(
        self,
        rt: WorkerRuntime,
        session: Session,
        job: UploadJob | None,
        answer: Any,
        prepared: Any,
        now: datetime,
    ) -> str:
        """Record a successful call on the locked row (None: the job was deleted)."""
        ...

    def apply(
        self,
        rt: WorkerRuntime,
        session: Session,
        job: UploadJob,
        verdict: Verdict,
        prepared: Any,
        now: datetime,
    ) -> str:
        """Apply a verdict to the job this worker still holds."""
        ...


def run_step(rt: WorkerRuntime, step: Step, job_id: str) -> StepOutcome:
    """Claim, call, record and schedule one step of one job.

    Nothing that goes wrong after the claim leaves the job held until its lease runs out:
    an exception no rule names (a database error, a time limit, a bug, a signal) releases
    the job at once with the true reason, and says whether the step's API call had
    started. A signal's SystemExit or KeyboardInterrupt is re-raised once the job is released.
    """
    claimed_at = rt.clock()
    if call_context.stopping.is_set():
        return _hand_back_unstarted(rt, step, job_id, claimed_at)
    claimed = step.claim(rt, job_id, claimed_at)
    if isinstance(claimed, StepOutcome):
        return claimed
    start_by = claimed_at + timedelta(seconds=rt.settings.time_budgets.last_call_start)
    try:
        with call_context.calls_for(job_id, start_by=start_by):
            answer = step.call(rt, claimed)
    except RELEASED_ON as exc:
        verdict = verdict_for(exc, rt) or _released(exc)
        started = ledger.job_calls_since(rt.engine, job_id, kind=step.call_kind, since=claimed_at)
        outcome = _apply_verdict(rt, step, claimed, replace(verdict, call_started=started > 0))
        if not isinstance(exc, Exception):
            raise
        return outcome
    try:
        action, moved_to = _record_answer(rt, step, claimed, answer, claimed_at)
    except RELEASED_ON as exc:
        verdict = replace(
            _released(exc),
            reason=f"{step.describe(answer)}, but recording it failed: {_cause(exc)}",
            call_started=True,
        )
        outcome = _apply_verdict(rt, step, claimed, verdict)
        if not isinstance(exc, Exception):
            raise
        return outcome
    return StepOutcome(job_id, action, moved_to)


def _moved_to(job: UploadJob | None, found_in: JobState | None) -> JobState | None:
    """The job's state if the outcome just recorded changed it, else None."""
    if job is None or job.job_state is found_in:
        return None
    return job.job_state


# A database that went away while an answer is in hand (a restart, a failover): the answer
# is recorded as soon as it is back, within the step's time budget. Releasing the job
# instead would lose the answer (an upload's ticket: the document would be sent twice).
RECORD_RETRY_ON = (OperationalError, InterfaceError, DisconnectionError)
RECORD_RETRY_PAUSE_SECONDS = 1.0


def _record_answer(
    rt: WorkerRuntime, step: Step, claimed: UploadJob, answer: Any, claimed_at: datetime
) -> tuple[str, JobState | None]:
    """Record a successful call's answer (the action, and the state it moved the job to),
    trying again while the database is unreachable until the step's soft time limit is
    near; then the last error goes to the caller."""
    deadline = _record_deadline(rt, claimed_at)
    while True:
        try:
            prepared = step.prepare(rt, claimed)
            with job_table.locked_job(rt.engine, claimed.id) as (session, job):
                found_in = job.job_state if job is not None else None
                action = step.record(rt, session, job, answer, prepared, rt.clock())
                return action, _moved_to(job, found_in)
        except RECORD_RETRY_ON as exc:
            if time.monotonic() + RECORD_RETRY_PAUSE_SECONDS >= deadline:
                raise
            log.warning(
                "%s %s: recording its answer failed (%s); trying again",
                step.noun,
                claimed.id,
                _cause(exc),
            )
            time.sleep(RECORD_RETRY_PAUSE_SECONDS)


def _record_deadline(rt: WorkerRuntime, claimed_at: datetime) -> float:
    """The last monotonic moment to try recording: a pause before the soft time limit."""
    elapsed = (rt.clock() - claimed_at).total_seconds()
    budget = rt.settings.time_budgets.soft_time_limit - elapsed - RECORD_RETRY_PAUSE_SECONDS
    return time.monotonic() + max(0.0, budget)


STOPPING_NOTE = "the worker was stopping and did not start this step; sent again"


def _hand_back_unstarted(rt: WorkerRuntime, step: Step, job_id: str, now: datetime) -> StepOutcome:
    """A message taken while the process stops (a pool child started during the warm
    shutdown, or one taking a last message) is not started: a step begun now could be cut
    off when the pool closes, and its job would wait for the lease. The job's publish mark
    is cleared instead, so the dispatcher's next pass sends it to a worker that stays."""
    handed_back = job_table.mark_for_redispatch(
        rt.engine, job_id, state=step.due_state, now=now, note=STOPPING_NOTE
    )
    words = "handed back to the dispatcher" if handed_back else "nothing to hand back"
    return StepOutcome(job_id, f"not started, the worker is stopping: {words}")


# What the runner catches after a claim. Anything else (a process being torn down) it lets
# pass, and the lease brings the job back.
RELEASED_ON = (Exception, SystemExit, KeyboardInterrupt)


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _released(exc: BaseException) -> Verdict:
    """The verdict on an exception no rule names: give the job back at once."""
    log.warning("step stopped by %s; releasing the job", type(exc).__name__, exc_info=exc)
    return Verdict(Decision.RELEASE, _cause(exc))


def _apply_verdict(
    rt: WorkerRuntime, step: Step, claimed: UploadJob, verdict: Verdict
) -> StepOutcome:
    job_id = claimed.id
    prepared = step.prepare(rt, claimed)
    now = rt.clock()
    with job_table.held_job(rt.engine, job_id, step.held_state, rt.owner) as (session, job):
        if job is None:
            done = "deferred" if verdict.decision is Decision.DEFER else f"{step.noun} failed"
            return StepOutcome(job_id, f"{done} after its lease was lost: {verdict.reason}")
        found_in = job.job_state
        action = step.apply(rt, session, job, verdict, prepared, now)
        moved_to = _moved_to(job, found_in)
    return StepOutcome(job_id, action, moved_to)
