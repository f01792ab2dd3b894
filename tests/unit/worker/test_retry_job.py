"""`retry_job`: a failed or expired job starts again from the queue; nothing else does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from api_client import BadRequestError
from intake.producer import retry_job
from models import JobState
from models.jobs import JobNotRetryable
from tests.unit.worker.conftest import Harness, receipt, status
from worker.poll_step import poll_job
from worker.sweeper import sweep
from worker.upload_step import upload_job


def _failed_after_polling(h: Harness) -> str:
    job_id = h.polling_job("tkt-old")
    h.advance(30)
    h.client.status_answers.append(status("Failed", ["bad"]))
    poll_job(h.rt, job_id)
    assert h.job(job_id).job_state is JobState.FAILED
    return job_id


def _expired(make_harness: Callable[..., Harness]) -> tuple[Harness, str]:
    h = make_harness(poll_deadline=10)
    job_id = h.polling_job("tkt-old", next_poll_at=h.now[0])
    h.advance(20)
    h.client.status_answers.append(status("InProgress"))
    poll_job(h.rt, job_id)
    assert h.job(job_id).job_state is JobState.EXPIRED
    return h, job_id


def _assert_requeued(h: Harness, job_id: str, from_state: str) -> None:
    now = h.now[0]
    job = h.job(job_id)
    assert job.job_state is JobState.QUEUED
    assert job.attempts == 0
    assert job.poll_count == 0
    assert job.ticket_id is None
    assert job.uploaded_at is None
    assert job.next_poll_at is None
    assert job.not_before is None
    assert job.finished_at is None
    assert job.last_error is None
    last = h.events(job_id)[-1]
    assert (last.from_state, last.to_state) == (from_state, "queued")
    assert last.reason == "retried by the operator"
    assert last.at == now
    h.assert_dispatched_when_due("upload", job_id, now)  # due at once, sent by the dispatcher


def test_a_failed_job_is_queued_again_with_reset_counters(h: Harness) -> None:
    job_id = _failed_after_polling(h)
    now = h.advance(3600)

    job = retry_job(h.rt.engine, job_id, now=now, reason="retried by the operator")

    assert job.id == job_id
    _assert_requeued(h, job_id, "failed")

    # and it really goes again: a fresh upload, a fresh ticket
    h.client.upload_answers.append(receipt("tkt-new"))
    assert upload_job(h.rt, job_id).action == "uploaded: ticket tkt-new"
    assert h.job(job_id).attempts == 1


def test_an_expired_job_is_queued_again(make_harness: Callable[..., Harness]) -> None:
    h, job_id = _expired(make_harness)
    now = h.advance(60)

    retry_job(h.rt.engine, job_id, now=now, reason="retried by the operator")

    _assert_requeued(h, job_id, "expired")


def test_a_job_failed_at_upload_is_queued_again(h: Harness) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(BadRequestError("-> 400", status_code=400))
    upload_job(h.rt, job_id)
    now = h.advance(5)

    retry_job(h.rt.engine, job_id, now=now, reason="retried by the operator")

    _assert_requeued(h, job_id, "failed")


def test_a_retry_needs_no_broker_and_goes_out_when_the_broker_is_back(h: Harness) -> None:
    job_id = _failed_after_polling(h)
    h.publisher.down = True
    now = h.advance(5)

    retry_job(h.rt.engine, job_id, now=now, reason="again")

    job = h.job(job_id)
    assert job.job_state is JobState.QUEUED
    assert job.published_at is None
    assert h.dispatch().broker_down is True
    assert h.job(job_id).published_at is None
    h.publisher.down = False
    assert h.dispatch().uploads == 1
    assert h.publisher.sent == [("upload", job_id)]


def test_a_complete_job_cannot_be_retried(h: Harness) -> None:
    job_id = h.polling_job()
    h.advance(30)
    h.client.status_answers.append(status("Complete"))
    poll_job(h.rt, job_id)
    events_before = len(h.events(job_id))

    with pytest.raises(JobNotRetryable, match="is complete; only failed or expired"):
        retry_job(h.rt.engine, job_id, now=h.now[0], reason="again")

    assert h.job(job_id).job_state is JobState.COMPLETE
    assert len(h.events(job_id)) == events_before


@pytest.mark.parametrize("state", ["queued", "polling"])
def test_an_unfinished_job_cannot_be_retried(h: Harness, state: str) -> None:
    job_id = h.enqueue() if state == "queued" else h.polling_job()

    with pytest.raises(JobNotRetryable, match=f"is {state}; only failed or expired"):
        retry_job(h.rt.engine, job_id, now=h.now[0], reason="again")

    assert h.job(job_id).state == state


def test_an_unknown_job_cannot_be_retried(h: Harness) -> None:
    with pytest.raises(JobNotRetryable, match="no job nope"):
        retry_job(h.rt.engine, "nope", now=h.now[0], reason="again")


def test_a_job_whose_pdf_was_deleted_by_retention_cannot_be_retried(h: Harness) -> None:
    job_id = _failed_after_polling(h)
    h.advance(timedelta(days=h.rt.settings.retention_days + 1).total_seconds())
    assert sweep(h.rt).documents_deleted == 1

    with pytest.raises(JobNotRetryable, match="deleted after the retention period"):
        retry_job(h.rt.engine, job_id, now=h.now[0], reason="again")

    job = h.job(job_id)
    assert job.job_state is JobState.FAILED
    assert job.document_deleted_at is not None
