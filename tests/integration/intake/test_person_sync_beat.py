"""Learner mapping end to end on a real worker with its beat: an unmatched job waits, the
beat's persons sync (through the worker's client, the fleet governor and a delivery window
the pacer grants it) learns the person, the job is queued, and the dispatcher that runs
with the beat sends it: uploaded and complete."""

from __future__ import annotations

import requests

from intake.callers import add_key
from intake.producer import EnqueueRequest, enqueue_document
from models import JobState
from tests.pdf_samples import make_pdf
from tests.plugins.worker_fixtures import ServiceUnderTest

TENANT = "4028868"


def test_the_beat_syncs_persons_and_an_unmatched_job_is_delivered(
    service: ServiceUnderTest,
) -> None:
    add_key(service.engine, name="lms", tenants=[TENANT])
    request = EnqueueRequest(
        document=make_pdf(text="new starter's first aid"),
        person_code=None,
        learner_email="new.starter@example.nl",
        document_type="certificate",
        idempotency_key="lms/evt-1",
        source="intake",
    )
    job_id = enqueue_document(
        request,
        engine=service.engine,
        store=service.store,
        settings=service.settings,
    ).job.id
    assert service.job(job_id).job_state is JobState.UNMATCHED

    seeded = requests.post(
        f"{service.sandbox.url}/_sandbox/persons",
        json={
            "tenant_id": TENANT,
            "persons": [
                {
                    "personCode": "555001",
                    "emailAddresses": [{"type": "Business", "address": "New.Starter@example.nl"}],
                }
            ],
        },
        timeout=10,
    )
    assert seeded.status_code == 200, seeded.text
    service.configure(YFDOCS_PERSONS_SYNC_INTERVAL="1")
    service.start_worker(beat=True)
    job = service.wait_for_end([job_id], timeout=90)[job_id]
    assert (job.state, job.person_code) == ("complete", "555001")
    moves = [(event.from_state, event.to_state) for event in service.events(job_id)]
    assert moves[:2] == [(None, "unmatched"), ("unmatched", "queued")]
    reads = [entry for entry in service.received() if entry["path"] == "/learning/v1.0/persons"]
    assert reads
    assert all("take=1000" in entry["query"] for entry in reads)
    (upload,) = service.accepted_uploads()
    assert "/555001/" in upload["path"]
