"""`poll_job`: ask about the ticket, record the outcome, or plan the next poll (which the
dispatcher publishes when it is due)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from api_client import (
    AuthenticationError,
    ConnectTimeout,
    NotFoundError,
    RateLimitError,
    ServerError,
    YouforceError,
)
from models import JobState
from tests.unit.worker.conftest import OWNER, TENANT, Harness, status
from worker.poll_step import poll_job


class WorkerKilled(BaseException):
    """Stands in for a worker process dying in the middle of an API call."""


def test_complete_ticket_completes_the_job(h: Harness) -> None:
    job_id = h.polling_job("tkt-7")
    now = h.advance(30)
    h.client.status_answers.append(status("Complete"))

    outcome = poll_job(h.rt, job_id)

    assert outcome.action == "complete"
    assert h.client.status_calls == [(TENANT, "tkt-7")]
    job = h.job(job_id)
    assert job.job_state is JobState.COMPLETE
    assert job.finished_at == now
    assert job.poll_count == 1
    assert job.lease_owner is None
    assert job.lease_expires_at is None
    assert job.last_error is None
    last = h.events(job_id)[-1]
    assert (last.from_state, last.to_state) == ("polling", "complete")
    assert last.reason == "ticket tkt-7: Complete"
    h.advance(3600)
    h.dispatch()
    assert h.publisher.sent == [], "a finished job is never polled again"


def test_failed_ticket_fails_the_job_with_the_api_messages(h: Harness) -> None:
    job_id = h.polling_job("tkt-8")
    now = h.advance(30)
    h.client.status_answers.append(status("Failed", ["personCode unknown", "file rejected"]))

    outcome = poll_job(h.rt, job_id)

    assert outcome.action == "failed: Failed"
    job = h.job(job_id)
    assert job.job_state is JobState.FAILED
    assert job.finished_at == now
    assert job.last_error == (
        "Youforce rejected the document (Failed): personCode unknown; file rejected"
    )
    last = h.events(job_id)[-1]
    assert (last.from_state, last.to_state) == ("polling", "failed")
    assert last.reason == "ticket tkt-8: Failed: personCode unknown; file rejected"


def test_failed_ticket_without_messages_says_so(h: Harness) -> None:
    job_id = h.polling_job()
    h.advance(30)
    h.client.status_answers.append(status("Rejected"))

    poll_job(h.rt, job_id)

    job = h.job(job_id)
    assert job.job_state is JobState.FAILED
    assert job.last_error == "Youforce rejected the document (Rejected): no message"


def test_in_progress_plans_the_next_poll_with_backoff(h: Harness) -> None:
    job_id = h.polling_job("tkt-9")
    events_before = len(h.events(job_id))

    now = h.advance(30)
    h.client.status_answers.append(status("InProgress"))
    outcome = poll_job(h.rt, job_id)

    assert outcome.action == "in progress; next poll in 60.0s"
    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.poll_count == 1
    assert job.next_poll_at == now + timedelta(seconds=60)
    assert job.lease_owner is None
    assert job.lease_expires_at is None
    events = h.events(job_id)
    assert len(events) == events_before + 1
    note = events[-1]
    assert (note.from_state, note.to_state) == ("polling", "polling")
    assert note.reason == "ticket tkt-9 still InProgress (poll 1); next in 60.0s"
    h.assert_dispatched_when_due("poll", job_id, now + timedelta(seconds=60))

    now = h.now[0]
    h.client.status_answers.append(status("InProgress"))
    poll_job(h.rt, job_id)
    job = h.job(job_id)
    assert job.poll_count == 2
    assert job.next_poll_at == now + timedelta(seconds=120)
    h.assert_dispatched_when_due("poll", job_id, now + timedelta(seconds=120))


def test_the_last_poll_is_pulled_in_to_the_deadline_and_then_expires(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(poll_deadline=100)
    job_id = h.polling_job("tkt-x")
    uploaded = h.job(job_id).uploaded_at
    assert uploaded is not None
    deadline = uploaded + timedelta(seconds=100)

    h.advance(30)
    h.client.status_answers.append(status("InProgress"))
    poll_job(h.rt, job_id)  # next in 60 s, at +90
    h.advance(60)
    h.client.status_answers.append(status("InProgress"))
    poll_job(h.rt, job_id)  # next would be +210: clamped to the deadline
    job = h.job(job_id)
    assert job.next_poll_at == deadline
    h.assert_dispatched_when_due("poll", job_id, deadline)

    now = h.now[0]
    h.client.status_answers.append(status("InProgress"))
    outcome = poll_job(h.rt, job_id)

    assert outcome.action == "expired"
    job = h.job(job_id)
    assert job.job_state is JobState.EXPIRED
    assert job.finished_at == now
    assert job.last_error == "gave up waiting for ticket tkt-x after 100s"
    last = h.events(job_id)[-1]
    assert (last.from_state, last.to_state) == ("polling", "expired")
    assert last.reason == "ticket tkt-x still InProgress 100s after upload"


def test_a_complete_answer_past_the_deadline_still_completes(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(poll_deadline=100)
    job_id = h.polling_job()
    h.advance(500)
    h.client.status_answers.append(status("Complete"))

    assert poll_job(h.rt, job_id).action == "complete"
    assert h.job(job_id).job_state is JobState.COMPLETE


def test_an_early_duplicate_poll_is_skipped(h: Harness) -> None:
    job_id = h.polling_job()  # first poll due at +30
    before = h.job(job_id)

    assert poll_job(h.rt, job_id).action == "skipped: not due yet"
    h.advance(28.5)
    assert poll_job(h.rt, job_id).action == "skipped: not due yet"

    assert h.client.status_calls == []
    assert h.job(job_id) == before

    h.advance(0.6)  # 0.9 s early: within the slack
    h.client.status_answers.append(status("Complete"))
    assert poll_job(h.rt, job_id).action == "complete"


def test_a_job_being_polled_by_another_worker_is_skipped(h: Harness) -> None:
    job_id = h.polling_job()
    h.advance(30)
    h.update(job_id, lease_owner="other:2", lease_expires_at=h.now[0] + timedelta(seconds=5))

    assert poll_job(h.rt, job_id).action == "skipped: being polled by other:2"
    assert h.client.status_calls == []


def test_a_poll_holds_a_lease_while_it_asks(h: Harness) -> None:
    job_id = h.polling_job()
    now = h.advance(30)
    h.client.status_answers.append(WorkerKilled())

    with pytest.raises(WorkerKilled):
        poll_job(h.rt, job_id)

    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.lease_owner == OWNER
    assert job.lease_expires_at == now + timedelta(seconds=h.rt.settings.lease_seconds)
    assert job.poll_count == 1
    assert job.published_at is None


@pytest.mark.parametrize(
    ("error", "expected_delay"),
    [
        pytest.param(ServerError("GET -> 503", status_code=503, correlation_id="c-1"), 60.0),
        pytest.param(ConnectTimeout("connect timed out"), 60.0),
        pytest.param(RateLimitError("GET -> 429", status_code=429, retry_after=90.0), 90.0),
    ],
)
def test_a_transient_status_error_polls_again_later(
    h: Harness, error: YouforceError, expected_delay: float
) -> None:
    job_id = h.polling_job("tkt-t")
    now = h.advance(30)
    h.client.status_answers.append(error)

    outcome = poll_job(h.rt, job_id)

    assert outcome.action.startswith(f"status check failed, next in {expected_delay:.1f}s")
    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.poll_count == 1
    assert job.next_poll_at == now + timedelta(seconds=expected_delay)
    assert job.lease_owner is None
    assert job.lease_expires_at is None
    assert job.last_error == str(error)
    assert job.last_http_status == error.status_code
    assert job.last_correlation_id == error.correlation_id
    note = h.events(job_id)[-1]
    assert (note.from_state, note.to_state) == ("polling", "polling")
    assert note.reason == f"status check failed; next in {expected_delay:.1f}s"
    assert note.http_status == error.status_code
    assert note.correlation_id == error.correlation_id
    h.assert_dispatched_when_due("poll", job_id, now + timedelta(seconds=expected_delay))


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(NotFoundError("GET -> 404", status_code=404, correlation_id="c-404")),
        pytest.param(AuthenticationError("GET -> 401", status_code=401, correlation_id="c-401")),
    ],
)
def test_a_permanent_status_error_fails_the_job(h: Harness, error: YouforceError) -> None:
    job_id = h.polling_job("tkt-p")
    now = h.advance(30)
    h.client.status_answers.append(error)

    outcome = poll_job(h.rt, job_id)

    assert outcome.action == f"failed: {error}"
    job = h.job(job_id)
    assert job.job_state is JobState.FAILED
    assert job.finished_at == now
    assert job.last_error == str(error)
    assert job.last_http_status == error.status_code
    assert job.last_correlation_id == error.correlation_id
    assert job.lease_owner is None
    last = h.events(job_id)[-1]
    assert (last.from_state, last.to_state) == ("polling", "failed")
    assert last.reason == "status check of ticket tkt-p failed (permanent error)"
    assert last.http_status == error.status_code
    assert last.correlation_id == error.correlation_id
    h.advance(3600)
    h.dispatch()
    assert h.publisher.sent == []


def test_a_job_that_is_not_polling_is_skipped(h: Harness) -> None:
    job_id = h.enqueue()
    assert poll_job(h.rt, job_id).action == "skipped: queued"
    assert poll_job(h.rt, "no-such-job").action == "skipped: no such job"
    assert h.client.status_calls == []
    assert h.job(job_id).poll_count == 0


def test_a_complete_job_is_not_polled_again(h: Harness) -> None:
    job_id = h.polling_job()
    h.advance(30)
    h.client.status_answers.append(status("Complete"))
    poll_job(h.rt, job_id)

    assert poll_job(h.rt, job_id).action == "skipped: complete"
    assert len(h.client.status_calls) == 1


def test_an_answer_after_the_lease_was_lost_is_not_recorded(h: Harness) -> None:
    job_id = h.polling_job()
    h.advance(30)

    def slow_status() -> object:
        h.update(job_id, lease_owner="other:2")  # another worker took the poll over
        return status("Complete")

    h.client.status_answers.append(slow_status)
    assert poll_job(h.rt, job_id).action == "poll answered after its lease was lost"
    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.lease_owner == "other:2"
