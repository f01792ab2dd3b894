"""`upload_job`: claim, upload, commit the ticket, plan the first poll; or retry, or fail.

A step never publishes: it records when its follow-up is due, and the dispatcher sends it
then (`Harness.assert_dispatched_when_due`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from api_client import (
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ReadTimeout,
    ServerError,
    YouforceError,
)
from models import JobState
from scheduling.policy.retry import RetryPolicy
from tests.unit.worker.conftest import OWNER, TENANT, Harness, receipt
from worker.runtime import WorkerRuntime
from worker.sweeper import sweep
from worker.upload_step import upload_job

DOUBT = (
    "; the upload may have arrived although no ticket came back (sending it again can put "
    "it in the personnel file twice)"
)


class WorkerKilled(BaseException):
    """Stands in for a worker process dying in the middle of an API call."""


def _transitions(h: Harness, job_id: str) -> list[tuple[str | None, str]]:
    return [(event.from_state, event.to_state) for event in h.events(job_id)]


# --- happy path and duplicates ------------------------------------------------------------


def test_upload_commits_the_ticket_and_plans_the_first_poll(h: Harness) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(receipt("tkt-42", correlation_id="corr-77"))
    now = h.now[0]

    outcome = upload_job(h.rt, job_id)

    assert outcome.action == "uploaded: ticket tkt-42"
    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.ticket_id == "tkt-42"
    assert job.attempts == 1
    assert job.poll_count == 0
    assert job.uploaded_at == now
    assert job.lease_owner is None
    assert job.lease_expires_at is None
    assert job.next_poll_at == now + timedelta(seconds=30)
    assert job.published_at is None
    assert job.last_error is None
    assert h.publisher.calls == 0, "a step never publishes"

    (call,) = h.client.upload_calls
    assert call.tenant_id == TENANT
    assert call.person_code == "10001"
    assert call.path == h.store.path(job.storage_key)
    assert call.filename == job.file_name
    assert call.description == job.description

    events = h.events(job_id)
    assert _transitions(h, job_id) == [
        (None, "queued"),
        ("queued", "uploading"),
        ("uploading", "polling"),
    ]
    assert events[1].reason == "upload attempt 1"
    assert events[1].attempt == 1
    assert events[2].reason == "uploaded: ticket tkt-42"
    assert events[2].correlation_id == "corr-77"
    assert events[2].http_status == 200
    assert events[2].attempt == 1
    h.assert_dispatched_when_due("poll", job_id, now + timedelta(seconds=30))


def test_a_duplicate_message_for_a_polling_job_does_nothing(h: Harness) -> None:
    job_id = h.polling_job()
    before = h.job(job_id)
    events_before = len(h.events(job_id))

    outcome = upload_job(h.rt, job_id)

    assert outcome.action == "skipped: already polling"
    assert len(h.client.upload_calls) == 1  # only the first upload
    assert h.job(job_id) == before
    assert len(h.events(job_id)) == events_before


def test_an_unknown_job_is_skipped(h: Harness) -> None:
    assert upload_job(h.rt, "no-such-job").action == "skipped: no such job"
    assert h.client.upload_calls == []


def test_a_job_leased_by_another_worker_is_skipped(h: Harness) -> None:
    job_id = h.enqueue()
    lease_end = h.now[0] + timedelta(seconds=60)
    h.update(job_id, state="uploading", lease_owner="other:2", lease_expires_at=lease_end)

    outcome = upload_job(h.rt, job_id)

    assert outcome.action == "skipped: being uploaded by other:2"
    assert h.client.upload_calls == []
    job = h.job(job_id)
    assert job.job_state is JobState.UPLOADING
    assert job.lease_owner == "other:2"
    assert job.lease_expires_at == lease_end


def test_an_expired_upload_lease_is_taken_back_and_uploaded_again(h: Harness) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(WorkerKilled())
    with pytest.raises(WorkerKilled):
        upload_job(h.rt, job_id)
    held = h.job(job_id)
    assert held.job_state is JobState.UPLOADING
    assert held.lease_owner == OWNER

    h.advance(h.rt.settings.lease_seconds + 1)
    h.client.upload_answers.append(receipt("tkt-second"))
    outcome = upload_job(h.rt, job_id)

    assert outcome.action == "uploaded: ticket tkt-second"
    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.attempts == 2
    assert len(h.client.upload_calls) == 2
    events = h.events(job_id)
    assert _transitions(h, job_id) == [
        (None, "queued"),
        ("queued", "uploading"),
        ("uploading", "queued"),
        ("queued", "uploading"),
        ("uploading", "polling"),
    ]
    taken_back = events[2].reason
    assert "lost during upload attempt 1" in taken_back
    assert "the document arrives twice" in taken_back
    assert events[3].reason == "upload attempt 2"


def test_an_upload_answering_after_its_lease_was_taken_back_still_records_the_ticket(
    h: Harness,
) -> None:
    job_id = h.enqueue()

    def slow_upload() -> object:
        # The call outlives the lease; the sweeper takes the job back meanwhile.
        h.advance(h.rt.settings.lease_seconds + 5)
        assert sweep(h.rt).recovered_uploads == 1
        return receipt("tkt-late")

    h.client.upload_answers.append(slow_upload)
    outcome = upload_job(h.rt, job_id)

    assert outcome.action == "uploaded: ticket tkt-late"
    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.ticket_id == "tkt-late"
    reasons = [event.reason for event in h.events(job_id)]
    assert "the upload answered after its lease had been taken back" in reasons


def test_a_second_delivery_of_an_uploaded_job_is_recorded_as_a_duplicate(h: Harness) -> None:
    job_id = h.enqueue()

    def slow_upload() -> object:
        # While this call hangs, the lease runs out and another worker uploads the job.
        h.advance(h.rt.settings.lease_seconds + 5)
        other = _other_worker(h)
        h.client.upload_answers.insert(0, receipt("tkt-other"))
        assert upload_job(other, job_id).action == "uploaded: ticket tkt-other"
        return receipt("tkt-mine", correlation_id="corr-dup")

    h.client.upload_answers.append(slow_upload)
    outcome = upload_job(h.rt, job_id)

    assert outcome.action == "duplicate upload recorded: ticket tkt-mine"
    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.ticket_id == "tkt-other"
    last = h.events(job_id)[-1]
    assert last.from_state == last.to_state == "polling"
    assert "tkt-mine" in last.reason
    assert "duplicate in the personnel file" in last.reason
    assert last.correlation_id == "corr-dup"


def _other_worker(h: Harness) -> WorkerRuntime:
    """The same runtime under another owner: a second worker process."""
    return replace(h.rt, owner="other:2")


# --- transient errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected_delay", "http_status", "correlation_id"),
    [
        pytest.param(
            ServerError("POST /upload -> 503", status_code=503, correlation_id="c-503"),
            2.0,
            503,
            "c-503",
            id="503",
        ),
        pytest.param(
            RateLimitError("POST /upload -> 429", status_code=429, retry_after=7.0),
            7.0,
            429,
            None,
            id="429-retry-after",
        ),
        pytest.param(ReadTimeout("no answer within 60s"), 2.0, None, None, id="read-timeout"),
    ],
)
def test_a_transient_error_sends_the_job_back_to_the_queue_with_a_backoff(
    h: Harness,
    error: YouforceError,
    expected_delay: float,
    http_status: int | None,
    correlation_id: str | None,
) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(error)
    now = h.now[0]

    outcome = upload_job(h.rt, job_id)

    assert outcome.action.startswith(f"upload will be retried in {expected_delay:.1f}s")
    job = h.job(job_id)
    assert job.job_state is JobState.QUEUED
    assert job.attempts == 1
    assert job.not_before == now + timedelta(seconds=expected_delay)
    assert job.lease_owner is None
    assert job.lease_expires_at is None
    assert job.last_error == str(error)
    assert job.last_http_status == http_status
    assert job.last_correlation_id == correlation_id
    last = h.events(job_id)[-1]
    assert (last.from_state, last.to_state) == ("uploading", "queued")
    retrying = f"upload attempt 1 failed; retrying in {expected_delay:.1f}s"
    if http_status == 429:  # refused at the gateway: nothing arrived
        assert last.reason == retrying
        assert job.uncertain_deliveries == 0
    else:  # a 5xx or no answer after the body went out: it may have arrived
        assert last.reason == retrying + DOUBT
        assert job.uncertain_deliveries == 1
    assert last.http_status == http_status
    assert last.correlation_id == correlation_id
    h.assert_dispatched_when_due("upload", job_id, now + timedelta(seconds=expected_delay))


def test_the_backoff_grows_with_each_attempt_and_the_retry_then_succeeds(h: Harness) -> None:
    job_id = h.enqueue()
    delays = []
    for _ in range(3):
        h.client.upload_answers.append(ServerError("503", status_code=503))
        upload_job(h.rt, job_id)
        job = h.job(job_id)
        delays.append((job.not_before - h.now[0]).total_seconds())  # type: ignore[operator]
        h.advance(delays[-1])
    assert delays == [2.0, 4.0, 8.0]

    h.client.upload_answers.append(receipt("tkt-finally"))
    assert upload_job(h.rt, job_id).action == "uploaded: ticket tkt-finally"
    job = h.job(job_id)
    assert job.attempts == 4
    assert job.last_error is None
    assert job.last_http_status is None


def test_too_many_transient_failures_fail_the_job(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(retry_policy=RetryPolicy(jitter=0.0, max_attempts=3))
    job_id = h.enqueue()
    for attempt in range(1, 4):
        h.client.upload_answers.append(
            ServerError("POST -> 502", status_code=502, correlation_id="c-502")
        )
        upload_job(h.rt, job_id)
        if attempt < 3:  # each retry goes out when its backoff has passed
            not_before = h.job(job_id).not_before
            assert not_before is not None
            h.assert_dispatched_when_due("upload", job_id, not_before)

    job = h.job(job_id)
    assert job.job_state is JobState.FAILED
    assert job.attempts == 3
    assert job.finished_at is not None
    assert job.last_http_status == 502
    assert job.last_correlation_id == "c-502"
    last = h.events(job_id)[-1]
    assert (last.from_state, last.to_state) == ("uploading", "failed")
    assert last.reason == "upload attempt 3 failed (gave up)" + DOUBT
    assert len(h.client.upload_calls) == 3
    h.advance(3600)
    assert h.dispatch().uploads == 0, "nothing is sent after the last attempt"
    assert h.publisher.sent == []


# --- permanent errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(NotFoundError("-> 404", status_code=404, correlation_id="c-404"), id="404"),
        pytest.param(BadRequestError("-> 400", status_code=400, correlation_id="c-400"), id="400"),
        pytest.param(
            PermissionDeniedError("-> 403", status_code=403, correlation_id="c-403"), id="403"
        ),
    ],
)
def test_a_permanent_error_fails_the_job_at_once(h: Harness, error: YouforceError) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(error)
    now = h.now[0]

    outcome = upload_job(h.rt, job_id)

    assert outcome.action == f"failed: {error}"
    job = h.job(job_id)
    assert job.job_state is JobState.FAILED
    assert job.attempts == 1
    assert job.finished_at == now
    assert job.last_error == str(error)
    assert job.last_http_status == error.status_code
    assert job.last_correlation_id == error.correlation_id
    assert job.lease_owner is None
    assert job.lease_expires_at is None
    last = h.events(job_id)[-1]
    assert (last.from_state, last.to_state) == ("uploading", "failed")
    assert last.reason == "upload attempt 1 failed (permanent error)"
    assert last.http_status == error.status_code
    assert last.correlation_id == error.correlation_id
    h.advance(3600)
    h.dispatch()
    assert h.publisher.sent == [], "a failed job is never sent again"


def test_a_missing_stored_pdf_fails_the_job_with_a_clear_reason(h: Harness) -> None:
    job_id = h.enqueue()
    key = h.job(job_id).storage_key
    h.store.delete(key)

    outcome = upload_job(h.rt, job_id)

    assert h.client.upload_calls == []
    job = h.job(job_id)
    assert job.job_state is JobState.FAILED
    assert job.last_error == f"stored document {key} is missing"
    assert outcome.action == f"failed: stored document {key} is missing"
    assert job.lease_owner is None
    assert h.events(job_id)[-1].reason == f"stored document {key} is missing"


def test_an_upload_error_after_the_lease_was_lost_leaves_the_job_alone(h: Harness) -> None:
    job_id = h.enqueue()

    def slow_failure() -> object:
        h.advance(h.rt.settings.lease_seconds + 5)
        assert sweep(h.rt).recovered_uploads == 1
        raise ServerError("503", status_code=503)

    h.client.upload_answers.append(slow_failure)
    outcome = upload_job(h.rt, job_id)

    assert outcome.action.startswith("upload failed after its lease was lost")
    job = h.job(job_id)
    assert job.job_state is JobState.QUEUED  # as the sweeper left it
    assert job.not_before is None
    assert job.last_error is None
    h.assert_dispatched_when_due("upload", job_id, h.now[0])  # due again at once


# --- timing and publishing ----------------------------------------------------------------


def test_a_job_whose_backoff_has_not_passed_is_skipped(h: Harness) -> None:
    job_id = h.enqueue()
    h.update(job_id, not_before=h.now[0] + timedelta(seconds=60))

    assert upload_job(h.rt, job_id).action == "skipped: not due yet"
    assert h.client.upload_calls == []
    job = h.job(job_id)
    assert job.job_state is JobState.QUEUED
    assert job.attempts == 0

    h.advance(59.5)  # within the one-second slack for an early message
    h.client.upload_answers.append(receipt())
    assert upload_job(h.rt, job_id).action.startswith("uploaded")


def test_a_long_wait_stays_in_the_database_until_due(h: Harness) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(RateLimitError("429", status_code=429, retry_after=400.0))
    now = h.now[0]

    upload_job(h.rt, job_id)

    job = h.job(job_id)
    assert job.job_state is JobState.QUEUED
    assert job.not_before == now + timedelta(seconds=400)
    h.assert_dispatched_when_due("upload", job_id, now + timedelta(seconds=400))


def test_a_step_needs_no_broker_for_what_follows(h: Harness) -> None:
    job_id = h.enqueue()
    h.publisher.down = True
    h.client.upload_answers.append(receipt())

    upload_job(h.rt, job_id)

    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.published_at is None
    assert h.publisher.calls == 0
    assert job.next_poll_at is not None
    h.now[0] = job.next_poll_at
    assert h.dispatch().broker_down is True
    assert h.job(job_id).published_at is None, "refused: still the dispatcher's to send"

    h.publisher.down = False
    h.assert_dispatched_when_due("poll", job_id, job.next_poll_at)
