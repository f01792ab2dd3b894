"""`yfdocs metrics` against a real fleet: a worker delivers and fails documents, and the
exporter, a process of its own, reads it all from the database.

The worker's heartbeat shows it consuming while it runs and stopped once it has shut down;
the scrape wants the bearer token of YFDOCS_METRICS_TOKEN.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests

from tests.plugins.metrics import Exporter, running_exporter
from tests.plugins.worker_fixtures import ServiceUnderTest
from yfdocs.demo import DEMO_REJECTED_PERSON

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def exporter(service: ServiceUnderTest) -> Iterator[Exporter]:
    with running_exporter(service) as running:
        yield running


def test_the_exporter_reads_the_fleet_from_the_database(
    service: ServiceUnderTest, exporter: Exporter
) -> None:
    assert requests.get(exporter.url, timeout=5).status_code == 401
    worker = service.start_worker()
    hostname = f"test-0-{os.getpid()}@"
    delivered = service.enqueue()
    rejected = service.enqueue(person_code=DEMO_REJECTED_PERSON)
    jobs = service.wait_for_end([delivered, rejected])
    assert {job.state for job in jobs.values()} == {"complete", "failed"}

    samples = exporter.scrape()
    tenant = (("tenant", service.settings.tenant_id or ""),)
    assert samples[("yfdocs_jobs", (("state", "complete"), *tenant))] == 1
    assert samples[("yfdocs_jobs", (("state", "failed"), *tenant))] == 1
    assert samples[("yfdocs_polls_total", (("outcome", "failed"),))] == 1
    assert samples[("yfdocs_polls_total", (("outcome", "complete"),))] == 1
    assert samples[("yfdocs_uploads_total", (("outcome", "uploaded"),))] == 2
    assert samples[("yfdocs_ticket_processing_seconds_count", ())] == 1
    assert samples[("yfdocs_api_calls_total", (("kind", "upload"), ("status", "2xx")))] == 2
    assert samples[("yfdocs_token_requests_used", ())] >= 1
    up = {labels: v for (name, labels), v in samples.items() if name == "celery_worker_up"}
    (labels,) = up
    assert dict(labels)["hostname"].startswith(hostname)
    assert up[labels] == 1
    assert samples[("yfdocs_workers_consuming", ())] == 1

    worker.stop()
    samples = exporter.scrape()
    assert samples[("celery_worker_up", labels)] == 0, "a clean shutdown is recorded"
    assert samples[("yfdocs_workers_consuming", ())] == 0
