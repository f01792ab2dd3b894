"""What a delivery task reports: a result naming the document, or FAILURE when its step
ended the job failed or expired (the job's last error as the reason)."""

from __future__ import annotations

import pickle

import pytest

from api_client import NotFoundError
from models import JobState
from tests.unit.worker.conftest import TENANT, Harness, receipt, status
from worker.poll_step import poll_job
from worker.step_runner import StepOutcome
from worker.task_results import (
    DELIVERY_TASK_OPTIONS,
    JobExpired,
    JobFailed,
    JobNotDelivered,
    delivery_result,
    report,
)
from worker.upload_step import upload_job


def test_a_delivered_document_is_named_in_the_result(h: Harness) -> None:
    job_id = h.polling_job("tkt-41")
    h.advance(30)
    h.client.status_answers.append(status("Complete"))

    outcome = poll_job(h.rt, job_id)

    assert outcome.moved_to is JobState.COMPLETE
    assert report(h.rt, outcome) == {
        "documentType": "certificate",
        "personCode": "10001",
        "tenant": TENANT,
        "ticket": "tkt-41",
        "state": "complete",
        "job": job_id,
        "step": "complete",
    }


def test_an_upload_names_its_ticket_and_that_the_job_now_polls(h: Harness) -> None:
    job_id = h.enqueue(person_code="20002")
    h.client.upload_answers.append(receipt("tkt-42"))

    outcome = upload_job(h.rt, job_id)

    assert outcome.moved_to is JobState.POLLING
    result = report(h.rt, outcome)
    assert (result["personCode"], result["ticket"], result["state"]) == (
        "20002",
        "tkt-42",
        "polling",
    )


def test_a_rejected_ticket_fails_the_task_with_the_jobs_last_error(h: Harness) -> None:
    job_id = h.polling_job("tkt-43")
    h.advance(30)
    h.client.status_answers.append(status("Failed", ["the personnel file is locked"]))

    outcome = poll_job(h.rt, job_id)

    assert outcome.moved_to is JobState.FAILED
    with pytest.raises(JobFailed) as raised:
        report(h.rt, outcome)
    reason = "Youforce rejected the document (Failed): the personnel file is locked"
    assert str(raised.value) == reason == h.job(job_id).last_error
    assert repr(raised.value) == f"JobFailed({reason!r})"
    assert raised.value.result["personCode"] == "10001"
    assert raised.value.result["state"] == "failed"
    assert raised.value.result["ticket"] == "tkt-43"


def test_a_permanent_upload_error_fails_the_task(h: Harness) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(NotFoundError("no such person", status_code=404))

    outcome = upload_job(h.rt, job_id)

    assert outcome.moved_to is JobState.FAILED
    with pytest.raises(JobFailed) as raised:
        report(h.rt, outcome)
    assert str(raised.value) == h.job(job_id).last_error
    assert raised.value.result["ticket"] is None


def test_a_ticket_past_its_deadline_expires_the_task(h: Harness) -> None:
    job_id = h.polling_job("tkt-44")
    h.advance(h.rt.settings.poll_deadline + 1)
    h.client.status_answers.append(status("InProgress"))

    outcome = poll_job(h.rt, job_id)

    assert outcome.moved_to is JobState.EXPIRED
    with pytest.raises(JobExpired) as raised:
        report(h.rt, outcome)
    assert str(raised.value) == h.job(job_id).last_error
    assert "gave up waiting for ticket tkt-44" in str(raised.value)


def test_a_late_message_for_a_failed_job_is_no_failure_of_its_own(h: Harness) -> None:
    job_id = h.polling_job("tkt-45")
    h.advance(30)
    h.client.status_answers.append(status("Failed", ["locked"]))
    with pytest.raises(JobFailed):
        report(h.rt, poll_job(h.rt, job_id))

    again = poll_job(h.rt, job_id)

    assert again.moved_to is None
    assert report(h.rt, again)["state"] == "failed"


def test_a_deleted_job_still_has_a_result() -> None:
    outcome = StepOutcome("gone-1", "skipped: no such job")

    assert delivery_result(outcome, None) == {
        "job": "gone-1",
        "state": None,
        "step": "skipped: no such job",
    }


def test_the_reason_and_result_cross_the_pool_with_the_exception() -> None:
    original = JobFailed("locked personnel file", {"personCode": "900001", "job": "j"})

    copy = pickle.loads(pickle.dumps(original))

    assert isinstance(copy, JobFailed)
    assert str(copy) == "locked personnel file"
    assert copy.result == {"personCode": "900001", "job": "j"}


def test_delivery_tasks_expect_these_failures_and_never_retry() -> None:
    assert DELIVERY_TASK_OPTIONS["throws"] == (JobNotDelivered,)
    assert DELIVERY_TASK_OPTIONS["max_retries"] == 0
