"""The JSON and table views of jobs."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from intake.job_json import event_to_dict, job_to_dict
from intake.producer import EnqueueRequest
from models.jobs import AmbiguousJobId, JobNotFound, find_job, job_events, list_jobs
from tests.pdf_samples import make_pdf
from tests.plugins.producer_fixtures import Producer
from yfdocs.job_views import render_job_detail, render_jobs_table

REQUIRED = {
    "id",
    "state",
    "tenant_id",
    "person_code",
    "document_type",
    "ticket_id",
    "attempts",
    "error",
    "created_at",
    "updated_at",
}


def enqueue(producer: Producer, text: str) -> str:
    result = producer.enqueue(
        EnqueueRequest(document=make_pdf(text=text), person_code="P1", document_type="diploma")
    )
    return result.job.id


def test_job_to_dict_has_the_promised_fields(producer: Producer) -> None:
    job_id = enqueue(producer, "a")
    job = find_job(producer.engine, job_id)
    data = job_to_dict(job)
    assert set(data) >= REQUIRED | {"description", "file_name", "priority", "source"}
    assert data["state"] == "queued"
    assert data["created_at"].endswith("Z")
    assert data["priority"] == "live"
    json.dumps(data)
    events = [event_to_dict(e) for e in job_events(producer.engine, job_id)]
    assert events[0]["to_state"] == "queued"
    assert events[0]["from_state"] is None


def test_list_jobs_newest_first_and_bounded(producer: Producer) -> None:
    ids = [enqueue(producer, str(n)) for n in range(3)]
    listed = [job.id for job in list_jobs(producer.engine)]
    assert listed == list(reversed(ids))
    assert len(list_jobs(producer.engine, limit=2)) == 2


def test_find_by_prefix(producer: Producer) -> None:
    job_id = enqueue(producer, "p")
    assert find_job(producer.engine, job_id[:8]).id == job_id
    assert find_job(producer.engine, job_id.upper()).id == job_id
    with pytest.raises(JobNotFound):
        find_job(producer.engine, "zzzz")
    with pytest.raises(JobNotFound):
        find_job(producer.engine, "%")


def test_ambiguous_prefix(producer: Producer) -> None:
    ids = [enqueue(producer, f"many {n}") for n in range(17)]  # 17 ids, 16 first digits
    first_digits = [job_id[0] for job_id in ids]
    shared = next(d for d in first_digits if first_digits.count(d) > 1)
    with pytest.raises(AmbiguousJobId, match="more than one job"):
        find_job(producer.engine, shared)


def test_rendering(producer: Producer) -> None:
    job_id = enqueue(producer, "r")
    job = find_job(producer.engine, job_id)
    console = Console(width=200, record=True)
    console.print(render_jobs_table([job], title="jobs"))
    console.print(render_job_detail(job, job_events(producer.engine, job_id)))
    output = console.export_text()
    assert job_id[:8] in output
    assert "queued" in output
    assert "history" in output
    assert "enqueued by library" in output


def test_an_upload_that_may_have_arrived_shows_in_status(producer: Producer) -> None:
    job = find_job(producer.engine, enqueue(producer, "doubt"))
    job.attempts = 2
    job.uncertain_deliveries = 1
    console = Console(width=200, record=True)
    console.print(render_jobs_table([job], title="jobs"))
    assert "2 (1 may have arrived)" in console.export_text()
    assert job_to_dict(job)["uncertain_deliveries"] == 1
