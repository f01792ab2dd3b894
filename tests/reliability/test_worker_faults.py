"""Faults a production worker meets: killed processes, lost messages, API storms, a dead
broker.

Each test runs real worker processes against the real sandbox and checks the end state
in the database and what the sandbox received: nothing lost, nothing uploaded twice
unless the history says why.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from models import JobState
from tests.plugins.worker_fixtures import ServiceUnderTest, purge_broker
from worker.celery_app import (
    create_celery_app,
    filesystem_queue_folder,
    job_ids_waiting_in_filesystem_queue,
    ready_api_messages,
)

KILLABLE_BROKERS = [
    "filesystem",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("amqp", marks=pytest.mark.rabbitmq),
]


def _requests_in_flight(service: ServiceUnderTest, endpoint_part: str) -> bool:
    return any(
        endpoint_part in entry.get("path", "") and entry.get("status") is None
        for entry in service.received()
    )


@pytest.mark.parametrize("broker", KILLABLE_BROKERS)
def test_worker_killed_during_an_upload_is_uploaded_again_and_the_risk_recorded(
    service: ServiceUnderTest,
) -> None:
    """The kill falls after the API has the whole body and before its answer is committed.

    The API (like the sandbox) goes on and accepts the lost attempt, so the document does
    arrive twice; the job must still end complete and its history must say why.
    """
    service.configure(YFDOCS_LEASE_SECONDS="14", YFDOCS_READ_TIMEOUT="5")
    service.sandbox.patch_config({"faults": {"latency_s": 4.0}})
    worker = service.start_worker()
    job_id = service.enqueue()
    service.wait_until(
        lambda: _requests_in_flight(service, "/documents/"), what="the upload to be in flight"
    )
    assert service.job(job_id).state == JobState.UPLOADING

    worker.kill()
    service.sandbox.patch_config({"faults": {"latency_s": 0.0}})
    service.start_worker()
    job = service.wait_for_end([job_id], timeout=60)[job_id]

    assert job.state == "complete"
    uploads = service.accepted_uploads()
    assert len(uploads) == 2, "the lost attempt was accepted by the API after the kill"
    assert job.ticket_id == uploads[-1]["ticket_id"]
    reasons = [event.reason for event in service.events(job_id)]
    assert any(
        "lost during upload attempt 1" in reason and "arrives twice" in reason for reason in reasons
    )
    assert job.attempts == 2


@pytest.mark.parametrize("broker", KILLABLE_BROKERS)
def test_worker_killed_during_a_poll_is_recovered(service: ServiceUnderTest) -> None:
    service.configure(YFDOCS_LEASE_SECONDS="14", YFDOCS_READ_TIMEOUT="5")
    service.sandbox.patch_config({"ticket_delay": {"kind": "fixed", "seconds": 3.0}})
    worker = service.start_worker()
    job_id = service.enqueue()
    service.wait_until(
        lambda: service.job(job_id).state == JobState.POLLING, what="the job to be polling"
    )
    service.sandbox.patch_config({"faults": {"latency_s": 4.0}})
    service.wait_until(
        lambda: _requests_in_flight(service, "/status"), what="a status check in flight"
    )

    worker.kill()
    service.sandbox.patch_config({"faults": {"latency_s": 0.0}})
    service.start_worker()
    job = service.wait_for_end([job_id], timeout=60)[job_id]

    assert job.state == "complete"
    assert len(service.accepted_uploads()) == 1
    reasons = [event.reason for event in service.events(job_id)]
    assert any("lost during a status check" in reason for reason in reasons)


def test_a_message_a_dead_worker_took_is_sent_again_long_before_republish_after(
    service: ServiceUnderTest,
) -> None:
    """The filesystem broker forgets a message once a worker receives it: a worker killed
    after that and before it started the job takes the message along, and no lease says
    so, as the job is only queued. The sweeper must see that the message is gone and hand
    the job back to the dispatcher, not wait an hour (`republish_after`)."""
    service.configure(YFDOCS_REPUBLISH_AFTER="3600")
    job_id = service.enqueue()
    sent = service.dispatch_once()
    assert sent.returncode == 0, sent.stderr
    assert job_id in job_ids_waiting_in_filesystem_queue(service.settings)
    for message in filesystem_queue_folder(service.settings).iterdir():
        if job_id in message.name:
            message.unlink()  # received by a worker that was then killed

    service.start_worker()
    job = service.wait_for_end([job_id], timeout=90)[job_id]

    assert job.state == "complete"
    assert job.attempts == 1, "the lost message cost no attempt"
    assert len(service.accepted_uploads()) == 1
    reasons = [event.reason for event in service.events(job_id)]
    assert any("left the broker's queue folder" in reason for reason in reasons)


@pytest.mark.parametrize(
    "broker",
    [
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("amqp", marks=pytest.mark.rabbitmq),
    ],
)
def test_a_message_a_real_broker_lost_is_sent_again_long_before_republish_after(
    service: ServiceUnderTest,
) -> None:
    """A broker restart can drop a message published just before it (Redis without
    persistence, a publish into a dying connection). The job stays queued and marked
    published; the sweeper sees that the API queue holds no message at all while the job
    waits unclaimed, and hands it back to the dispatcher."""
    service.configure(YFDOCS_REPUBLISH_AFTER="3600")
    job_id = service.enqueue()
    sent = service.dispatch_once()
    assert sent.returncode == 0, sent.stderr
    app = create_celery_app(service.settings)
    assert ready_api_messages(app) == 1
    purge_broker(service.settings)  # the broker restarted and lost it
    assert ready_api_messages(app) == 0

    service.start_worker()
    job = service.wait_for_end([job_id], timeout=90)[job_id]

    assert job.state == "complete"
    assert job.attempts == 1, "the lost message cost no attempt"
    assert len(service.accepted_uploads()) == 1
    reasons = [event.reason for event in service.events(job_id)]
    assert any("is not in the broker" in reason for reason in reasons), reasons


def test_storms_of_transient_errors_end_complete(service: ServiceUnderTest) -> None:
    service.configure(YFDOCS_RETRY_MAX_ATTEMPTS="30")
    service.sandbox.patch_config(
        {
            "faults": {
                "server_error_rate": 0.3,
                "server_error_statuses": [500, 503, 429, 409],
                "drop_rate": 0.1,
            }
        }
    )
    service.start_worker(concurrency=3)
    job_ids = [service.enqueue(title=f"storm {n}") for n in range(8)]

    jobs = service.wait_for_end(job_ids, timeout=120)

    assert {job.state for job in jobs.values()} == {"complete"}
    statuses = [entry.get("status") for entry in service.received()]
    assert any(status in (500, 503, 429, 409) for status in statuses), "the storm happened"
    retried = [job for job in jobs.values() if job.attempts > 1 or job.poll_count > 1]
    assert retried, "some jobs had to retry"
    for job in jobs.values():
        tickets = [e for e in service.accepted_uploads() if e["ticket_id"] == job.ticket_id]
        assert len(tickets) == 1


def test_read_timeouts_are_retried_and_recorded(service: ServiceUnderTest) -> None:
    service.configure(YFDOCS_READ_TIMEOUT="1", YFDOCS_LEASE_SECONDS="10")
    service.sandbox.patch_config({"faults": {"latency_s": 2.0}})
    service.start_worker()
    job_id = service.enqueue()
    service.wait_until(
        lambda: "timed out" in (service.job(job_id).last_error or "").lower(),
        what="a read timeout to be recorded on the job",
    )
    service.sandbox.patch_config({"faults": {"latency_s": 0.0}})

    job = service.wait_for_end([job_id], timeout=60)[job_id]

    assert job.state == "complete"
    assert job.attempts >= 2


def test_a_job_enqueued_while_the_broker_is_down_is_delivered_once_it_is_back(
    service: ServiceUnderTest,
) -> None:
    job_id = service.enqueue()  # the producer needs no broker
    down = service.dispatch_once(YFDOCS_BROKER_URL="redis://127.0.0.1:1/0")
    assert "Traceback" not in down.stderr, down.stderr
    queued = service.job(job_id)
    assert queued.state == "queued"
    assert queued.published_at is None, "refused: the row waits for the next pass"

    service.start_worker()
    job = service.wait_for_end([job_id], timeout=60)[job_id]

    assert job.state == "complete"
    assert len(service.accepted_uploads()) == 1


def test_yfdocs_retry_sends_a_failed_job_again(service: ServiceUnderTest) -> None:
    service.configure(YFDOCS_RETRY_MAX_ATTEMPTS="1")
    service.sandbox.patch_config({"faults": {"server_error_count": 1}})
    service.start_worker()
    job_id = service.enqueue()
    failed = service.wait_for_end([job_id])[job_id]
    assert failed.state == "failed"
    assert failed.last_http_status in (500, 503)

    env = {**service.variables}
    answer = subprocess.run(
        [sys.executable, "-m", "yfdocs", "retry", job_id],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == [job_id, "queued"]

    job = service.wait_for_end([job_id])[job_id]
    assert job.state == "complete"
    changes = [
        (e.from_state, e.to_state) for e in service.events(job_id) if e.from_state != e.to_state
    ]
    assert ("failed", "queued") in changes

    again = subprocess.run(
        [sys.executable, "-m", "yfdocs", "retry", job_id],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 2
    assert "only failed or expired jobs can be retried" in again.stderr
