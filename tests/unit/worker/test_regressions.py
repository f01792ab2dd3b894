"""Regressions found by the unit tests: each failed before its fix."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from api_client import ServerError
from intake.producer import EnqueueRequest, enqueue_document
from intake.storage import FilesystemDocumentStore
from models import JobState
from tests.pdf_samples import make_pdf
from tests.unit.worker.conftest import Harness, receipt, status
from worker.poll_step import poll_job
from worker.sweeper import sweep
from worker.upload_step import upload_job


def test_an_overdue_poll_is_not_republished_on_every_pass(h: Harness) -> None:
    republish_after = h.rt.settings.republish_after
    now = h.now[0]
    h.polling_job(
        published_at=now - timedelta(seconds=republish_after + 1),
        next_poll_at=now - timedelta(seconds=republish_after + 1),
    )
    assert h.dispatch().polls == 1  # the stale message is replaced: right
    h.advance(h.rt.settings.dispatch_interval)  # next pass, the new message still queued
    assert h.dispatch().polls == 0
    assert len(h.publisher.of("poll")) == 1


def test_a_ticket_whose_status_checks_keep_failing_expires_at_the_deadline(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(poll_deadline=100)
    job_id = h.polling_job(next_poll_at=h.now[0])
    h.advance(10_000)  # far past the deadline
    h.client.status_answers.append(ServerError("GET -> 503", status_code=503))
    poll_job(h.rt, job_id)
    assert h.job(job_id).job_state is JobState.EXPIRED


def test_a_shared_file_deleted_once_counts_once(h: Harness) -> None:
    content = make_pdf(text="two old jobs, one file")
    for person in ("10001", "20002"):
        job_id = h.enqueue(content=content, person_code=person)
        h.client.upload_answers.append(receipt())
        upload_job(h.rt, job_id)
        h.update(job_id, next_poll_at=h.now[0])
        h.client.status_answers.append(status("Complete"))
        poll_job(h.rt, job_id)
    h.advance(h.rt.settings.retention_days * 86400 + 1)
    assert sweep(h.rt).documents_deleted == 1


def test_retention_does_not_delete_a_file_a_producer_just_reused(h: Harness) -> None:
    content = make_pdf(text="re-enqueued just as its twin expires")
    old = h.enqueue(content=content, person_code="10001")
    h.client.upload_answers.append(receipt())
    upload_job(h.rt, old)
    h.update(old, next_poll_at=h.now[0])
    h.client.status_answers.append(status("Complete"))
    poll_job(h.rt, old)
    h.advance(h.rt.settings.retention_days * 86400 + 1)

    class SweepsAfterPut(FilesystemDocumentStore):
        def put(self, source):  # type: ignore[no-untyped-def]
            key = super().put(source)  # file already there: same key returned
            sweep(h.rt)  # the beat runs between the producer's put and its insert
            return key

    result = enqueue_document(
        EnqueueRequest(content, person_code="20002", document_type="certificate"),
        engine=h.engine,
        store=SweepsAfterPut(h.store.root),
        settings=h.rt.settings,
    )
    assert h.store.exists(result.job.storage_key)
    h.client.upload_answers.append(receipt())
    assert upload_job(h.rt, result.job.id).action.startswith("uploaded")
