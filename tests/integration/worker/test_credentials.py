"""A wrong client secret against the sandbox's strict token endpoint: the fleet asks once,
holds every job (none fails, the token budget is spared), and a worker restarted with the
right secret delivers them at once instead of after the refusal's wait."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sandbox import DEFAULT_CLIENT_SECRET
from tests.plugins.worker_fixtures import ServiceUnderTest

pytestmark = pytest.mark.slow


def _token_requests(service: ServiceUnderTest) -> list[dict[str, object]]:
    return [entry for entry in service.received() if entry.get("endpoint") == "token"]


def _fleet_json(service: ServiceUnderTest) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YFDOCS_")}
    env.update(service.variables)
    completed = subprocess.run(
        [sys.executable, "-m", "yfdocs", "status", "--fleet", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    payload: dict[str, object] = json.loads(completed.stdout)
    return payload


def test_refused_credentials_hold_the_jobs_until_a_worker_has_the_right_ones(
    service: ServiceUnderTest,
) -> None:
    service.configure(YFDOCS_CLIENT_SECRET="not-the-secret", YFDOCS_CREDENTIALS_RETRY="3600")
    job_ids = [service.enqueue(title=f"held {n}") for n in range(3)]
    worker = service.start_worker(concurrency=2)

    def all_held() -> bool:
        return all(
            any("refused the app's credentials" in e.reason for e in service.events(job_id))
            for job_id in job_ids
        )

    service.wait_until(all_held, timeout=60, what="every job held by the refusal")
    jobs = [service.job(job_id) for job_id in job_ids]
    assert {job.state for job in jobs} == {"queued"}
    assert {job.attempts for job in jobs} == {0}, "a refusal spends no attempt"
    assert len(_token_requests(service)) == 1, "the fleet asked the token endpoint once"
    (refused,) = _fleet_json(service)["credentials_refused"]  # type: ignore[misc]
    assert refused["refusals"] == 1
    worker.stop()

    service.configure(YFDOCS_CLIENT_SECRET=DEFAULT_CLIENT_SECRET)
    service.start_worker(concurrency=2)
    finished = service.wait_for_end(job_ids, timeout=90)

    assert {job.state for job in finished.values()} == {"complete"}
    assert len(_token_requests(service)) == 2
    assert _fleet_json(service)["credentials_refused"] == []
    for job_id in job_ids:
        assert any("new credentials" in e.reason for e in service.events(job_id))
