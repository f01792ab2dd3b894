"""Nothing that goes wrong after a claim leaves a job held until its lease runs out: the
step runner releases it at once with the true reason, and the history says whether the
step's API call had started (issue: jobs stuck for a whole lease, a history that is wrong)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from models import JobState
from scheduling import call_context
from scheduling.call_context import WorkerStopping
from scheduling.deferrals import SlotWaitTimeout
from scheduling.policy.retry import RetryPolicy
from scheduling.token_cache import TokenWaitTimeout
from tests.unit.worker.conftest import OWNER, Harness, NotGranted, receipt, status
from worker.poll_step import poll_job
from worker.sweeper import sweep
from worker.upload_step import upload_job


class WorkerKilled(BaseException):
    """Stands in for a worker process dying: nothing of the process runs any more."""


def _bug() -> None:
    raise KeyError("a bug in the step")


def test_an_unnamed_exception_before_the_call_releases_the_upload_at_once(h: Harness) -> None:
    job_id = h.enqueue()
    now = h.now[0]
    h.client.upload_answers.append(
        NotGranted(OperationalError("SELECT 1", {}, Exception("db gone")))
    )

    outcome = upload_job(h.rt, job_id)

    job = h.job(job_id)
    assert job.job_state is JobState.QUEUED, outcome
    assert job.lease_owner is None
    assert job.lease_expires_at is None
    assert job.not_before == now + timedelta(seconds=2.0)
    assert job.uncertain_deliveries == 0
    last = h.events(job_id)[-1]
    assert (last.from_state, last.to_state) == ("uploading", "queued")
    assert last.reason.startswith("upload attempt 1 stopped (OperationalError: ")
    assert "no upload call had started" in last.reason
    assert "may have arrived" not in last.reason
    h.assert_dispatched_when_due("upload", job_id, now + timedelta(seconds=2.0))


def test_an_unnamed_exception_after_the_call_went_out_says_it_may_have_arrived(
    h: Harness,
) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(_bug)

    upload_job(h.rt, job_id)

    job = h.job(job_id)
    assert job.job_state is JobState.QUEUED
    assert job.lease_owner is None
    assert job.uncertain_deliveries == 1
    last = h.events(job_id)[-1]
    assert "KeyError: 'a bug in the step'" in last.reason
    assert "its upload call had started" in last.reason
    assert "may have arrived" in last.reason


def test_a_release_counts_as_an_attempt_so_a_bug_cannot_loop_for_ever(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(retry_policy=RetryPolicy(jitter=0.0, max_attempts=2))
    job_id = h.enqueue()
    h.client.upload_answers.append(NotGranted(RuntimeError("always")))
    upload_job(h.rt, job_id)
    h.advance(10)
    h.client.upload_answers.append(NotGranted(RuntimeError("always")))
    upload_job(h.rt, job_id)

    job = h.job(job_id)
    assert job.job_state is JobState.FAILED
    assert job.last_error == "RuntimeError: always"
    assert h.events(job_id)[-1].reason == "upload attempt 2 failed (gave up)"


def test_a_time_limit_in_a_poll_releases_it_and_keeps_the_count_when_no_call_went(
    h: Harness,
) -> None:
    from billiard.exceptions import SoftTimeLimitExceeded

    job_id = h.polling_job()
    now = h.advance(30)
    h.client.status_answers.append(NotGranted(SoftTimeLimitExceeded()))

    poll_job(h.rt, job_id)

    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.lease_owner is None
    assert job.poll_count == 0
    assert job.next_poll_at == now + timedelta(seconds=2.0)
    last = h.events(job_id)[-1]
    assert last.reason.startswith("status check stopped (SoftTimeLimitExceeded")
    assert "no call was made" in last.reason


def test_a_signal_releases_the_job_and_still_stops_the_process(h: Harness) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(NotGranted(SystemExit(143)))

    with pytest.raises(SystemExit):
        upload_job(h.rt, job_id)

    job = h.job(job_id)
    assert job.job_state is JobState.QUEUED
    assert job.lease_owner is None


def test_a_token_wait_that_runs_out_is_a_deferral_not_an_error(h: Harness) -> None:
    job_id = h.enqueue()
    until = h.now[0] + timedelta(seconds=90)
    h.client.upload_answers.append(NotGranted(TokenWaitTimeout(until, "another fetches")))

    outcome = upload_job(h.rt, job_id)

    job = h.job(job_id)
    assert outcome.action.startswith("deferred until")
    assert job.job_state is JobState.QUEUED
    assert job.attempts == 0, "no call was made: not an attempt"
    assert job.not_before == until


def test_a_lost_upload_whose_call_never_started_does_not_claim_a_duplicate(h: Harness) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(NotGranted(WorkerKilled()))
    with pytest.raises(WorkerKilled):
        upload_job(h.rt, job_id)
    assert h.job(job_id).lease_owner == OWNER
    h.advance(h.rt.settings.lease_seconds + 1)

    sweep(h.rt)

    job = h.job(job_id)
    assert job.job_state is JobState.QUEUED
    assert job.uncertain_deliveries == 0
    last = h.events(job_id)[-1]
    assert last.reason == (
        f"worker {OWNER} lost during upload attempt 1 (lease expired) before its upload "
        "call started; uploading again"
    )


def test_a_stopping_worker_ends_a_slot_wait_at_once_without_an_attempt(h: Harness) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(NotGranted(WorkerStopping(h.now[0])))

    outcome = upload_job(h.rt, job_id)

    job = h.job(job_id)
    assert "the worker is stopping" in outcome.action
    assert job.job_state is JobState.QUEUED
    assert job.attempts == 0
    assert job.not_before == h.now[0]


@pytest.fixture
def stopping() -> Iterator[threading.Event]:
    """The process's stopping flag, cleared again after the test."""
    try:
        yield call_context.stopping
    finally:
        call_context.stopping.clear()


@pytest.mark.parametrize("kind", ["upload", "poll"])
def test_a_stopping_process_starts_no_step_and_hands_the_job_back(
    h: Harness, kind: str, stopping: threading.Event
) -> None:
    """A message taken while the worker stops is not started (the pool may close under
    it); the dispatcher is told to send it again, and no call is made."""
    if kind == "upload":
        job_id, step, state = h.enqueue(), upload_job, JobState.QUEUED
    else:
        job_id, step, state = h.polling_job(next_poll_at=h.now[0]), poll_job, JobState.POLLING
    h.update(job_id, published_at=h.now[0])
    calls_before = (len(h.client.upload_calls), len(h.client.status_calls))
    stopping.set()

    outcome = step(h.rt, job_id)

    job = h.job(job_id)
    assert outcome.action == "not started, the worker is stopping: handed back to the dispatcher"
    assert job.job_state is state
    assert job.lease_owner is None
    assert job.published_at is None, "the dispatcher sends it again"
    calls_after = (len(h.client.upload_calls), len(h.client.status_calls))
    assert calls_after == calls_before, "no call was made"
    assert h.events(job_id)[-1].reason == (
        "the worker was stopping and did not start this step; sent again"
    )


def test_the_runner_names_the_job_and_the_last_moment_to_start_a_call(h: Harness) -> None:
    job_id = h.enqueue()
    seen: list[call_context.CallContext] = []
    h.client.upload_answers.append(lambda: seen.append(call_context.current()) or receipt())

    upload_job(h.rt, job_id)

    [context] = seen
    assert context.job_id == job_id
    budget = h.rt.settings.time_budgets.last_call_start
    assert context.start_by == h.now[0] + timedelta(seconds=budget)
    assert call_context.current().job_id is None, "the context ends with the step"


def test_a_slot_wait_past_the_steps_time_defers(h: Harness) -> None:
    job_id = h.polling_job()
    h.advance(30)
    later = h.now[0] + timedelta(seconds=5)
    h.client.status_answers.append(NotGranted(SlotWaitTimeout(later, "no slot in time")))
    assert status("Complete")  # (the answer it never got)

    poll_job(h.rt, job_id)

    job = h.job(job_id)
    assert job.poll_count == 0
    assert job.next_poll_at == later


def _database_gone_for(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[int]:
    """Recording the upload's answer fails `failures` times as a database restart makes it
    fail; returns one entry per try."""
    from worker import step_runner
    from worker.upload_step import UploadStep

    real = UploadStep.record
    tries: list[int] = []

    def record(self: UploadStep, *args: Any, **kwargs: Any) -> str:
        tries.append(1)
        if len(tries) <= failures:
            raise OperationalError("UPDATE upload_jobs", {}, Exception("the database restarts"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(UploadStep, "record", record)
    monkeypatch.setattr(step_runner, "RECORD_RETRY_PAUSE_SECONDS", 0.01)
    return tries


def test_an_answer_in_hand_is_recorded_once_the_database_is_back(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload the API accepted while the database restarts keeps its ticket: releasing
    the job instead would send the document a second time."""
    job_id = h.enqueue()
    h.client.upload_answers.append(receipt())
    tries = _database_gone_for(monkeypatch, failures=3)

    outcome = upload_job(h.rt, job_id)

    assert outcome.action.startswith("uploaded"), outcome.action
    assert len(tries) == 4
    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.ticket_id is not None
    assert job.uncertain_deliveries == 0
    assert len(h.client.upload_calls) == 1


def test_a_database_gone_past_the_step_budget_releases_the_job_saying_it_may_have_arrived(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker import step_runner

    job_id = h.enqueue()
    h.client.upload_answers.append(receipt())
    tries = _database_gone_for(monkeypatch, failures=10_000)
    monkeypatch.setattr(
        step_runner, "_record_deadline", lambda rt, claimed_at: time.monotonic() + 0.1
    )

    outcome = upload_job(h.rt, job_id)

    assert 1 < len(tries) < 10_000, "tried again, then gave up at the deadline"
    assert "recording it failed" in outcome.action
    job = h.job(job_id)
    assert job.job_state is JobState.QUEUED
    assert job.uncertain_deliveries == 1
    assert "may have arrived" in h.events(job_id)[-1].reason
