"""The whole journey of a document through real worker processes and the real sandbox."""

from __future__ import annotations

import pytest

from api_client import DocumentType
from tests.plugins.worker_fixtures import ServiceUnderTest

ALL_BROKERS = [
    "filesystem",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("amqp", marks=pytest.mark.rabbitmq),
]


@pytest.mark.parametrize("broker", ALL_BROKERS)
def test_every_document_type_is_delivered_once_with_its_history(
    service: ServiceUnderTest,
) -> None:
    service.start_worker()
    job_ids = {
        service.enqueue(document_type=document_type.value): document_type
        for document_type in DocumentType
    }

    jobs = service.wait_for_end(list(job_ids))

    assert {job.state for job in jobs.values()} == {"complete"}
    uploads = service.accepted_uploads()
    assert sorted(entry["ticket_id"] for entry in uploads) == sorted(
        job.ticket_id for job in jobs.values()
    ), "each job uploaded exactly once, and its ticket recorded"
    paths = {entry["path"] for entry in uploads}
    assert paths == {
        f"/learning/v1.1/employees/191166/documents/{document_type.value}"
        for document_type in DocumentType
    }
    for job_id in job_ids:
        steps = [(event.from_state, event.to_state) for event in service.events(job_id)]
        changes = [step for step in steps if step[0] != step[1]]
        assert changes == [
            (None, "queued"),
            ("queued", "uploading"),
            ("uploading", "polling"),
            ("polling", "complete"),
        ]
        assert jobs[job_id].finished_at is not None
        assert jobs[job_id].attempts == 1


def test_a_ticket_that_fails_ends_failed_with_the_api_messages(service: ServiceUnderTest) -> None:
    service.start_worker()
    job_id = service.enqueue(person_code="900001")

    job = service.wait_for_end([job_id])[job_id]

    assert job.state == "failed"
    assert job.ticket_id is not None
    assert job.last_error is not None
    assert "locked" in job.last_error.lower()
    assert service.events(job_id)[-1].to_state == "failed"


def test_a_ticket_that_never_completes_expires_at_the_deadline(service: ServiceUnderTest) -> None:
    service.configure(YFDOCS_POLL_DEADLINE="3")
    service.start_worker()
    job_id = service.enqueue(person_code="900002")

    job = service.wait_for_end([job_id], timeout=30)[job_id]

    assert job.state == "expired"
    assert job.uploaded_at is not None
    assert job.finished_at is not None
    waited = (job.finished_at - job.uploaded_at).total_seconds()
    assert 3.0 <= waited < 10.0
    assert job.poll_count >= 2, "polled on the way, not only at the deadline"


def test_an_unknown_person_fails_at_once_without_retries(service: ServiceUnderTest) -> None:
    service.start_worker()
    job_id = service.enqueue(person_code="555555")

    job = service.wait_for_end([job_id])[job_id]

    assert job.state == "failed"
    assert job.attempts == 1
    assert job.last_http_status == 404
    assert job.last_correlation_id, "the API's correlationId is kept for support calls"
    assert len([e for e in service.received() if "/documents/" in e["path"]]) == 1


def test_a_refused_upload_fails_with_the_api_reason(service: ServiceUnderTest) -> None:
    service.sandbox.patch_config({"max_file_bytes": 300})
    service.start_worker()
    job_id = service.enqueue()

    job = service.wait_for_end([job_id])[job_id]

    assert job.state == "failed"
    assert job.last_http_status == 400
    assert job.attempts == 1
