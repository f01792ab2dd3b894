"""Every per-app limit answers 429 with a Youforce error body, as the vendor guide lists them."""

from __future__ import annotations

import threading
import time

import requests

from sandbox import SandboxServer
from tests.integration.sandbox.wire import (
    admin,
    advance,
    api_get,
    assert_youforce_error,
    get_token,
    hold,
    request_token,
)
from tests.plugins.sandbox_fixtures import SandboxFactory


def wait_until_calls_held(server: SandboxServer, count: int) -> None:
    """Until `count` calls sit in their slots; a generous bound only so a bug cannot hang."""
    deadline = time.monotonic() + 30
    while admin(server, "hold")["calls_waiting"] < count:
        assert time.monotonic() < deadline, "the calls never reached their slots"
        time.sleep(0.01)


def test_fourth_parallel_call_is_429(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(limits={"max_parallel": 3})
    token = get_token(server)
    hold(server, True)
    responses: list[requests.Response] = []
    lock = threading.Lock()

    def call() -> None:
        response = api_get(server, token, "jobProfiles")
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=call) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        wait_until_calls_held(server, 3)
        refused = api_get(server, token, "jobProfiles")
    finally:
        hold(server, False)
        for thread in threads:
            thread.join(timeout=30)
    assert sorted(response.status_code for response in responses) == [200, 200, 200]
    body = assert_youforce_error(
        refused, 429, "policies.concurrentratelimit.ConcurrentRatelimtViolation"
    )
    assert "wait for the next time window" in body["error"]["message"]
    assert "Retry-After" not in refused.headers
    stats = admin(server, "stats")
    assert stats["rate_limited"]["parallel"] == 1
    assert stats["max_concurrency"] == 4
    # The slots are free again once the answers are out.
    assert api_get(server, token, "jobProfiles").status_code == 200


def test_spike_arrest_smooths_to_one_call_per_interval(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(limits={"spike_per_minute": 100.0}, clock_frozen=True)
    token = get_token(server)
    assert api_get(server, token, "jobProfiles").status_code == 200
    advance(server, 0.59)
    refused = api_get(server, token, "jobProfiles")
    assert_youforce_error(refused, 429, "policies.ratelimit.SpikeArrestViolation")
    advance(server, 0.01)  # 0.6 s after the last accepted call's arrival
    assert api_get(server, token, "jobProfiles").status_code == 200
    assert api_get(server, token, "jobProfiles").status_code == 429
    assert admin(server, "stats")["rate_limited"]["spike"] == 2


def test_daily_quota(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(limits={"daily_quota": 3, "send_retry_after": True})
    token = get_token(server)
    for _ in range(3):
        assert api_get(server, token, "jobProfiles").status_code == 200
    refused = api_get(server, token, "jobProfiles")
    assert_youforce_error(refused, 429, "policies.ratelimit.QuotaViolation")
    assert 1 <= int(refused.headers["Retry-After"]) <= 86_400
    stats = admin(server, "stats")
    assert stats["rate_limited"]["daily"] == 1
    assert stats["daily_calls"]["sandbox-client"] == 3


def test_quota_is_per_app_across_tenants(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(limits={"daily_quota": 2})
    token = get_token(server)
    other = get_token(server, tenant="4028869")
    assert api_get(server, token, "jobProfiles").status_code == 200
    response = requests.get(
        f"{server.url}/learning/v1.0/jobProfiles",
        headers={"Authorization": f"Bearer {other}", "X-Raet-Tenant-Id": "4028869"},
        timeout=10,
    )
    assert response.status_code == 200
    assert api_get(server, token, "jobProfiles").status_code == 429


def test_monthly_token_budget(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(limits={"monthly_token_budget": 2})
    assert request_token(server).status_code == 200
    assert request_token(server).status_code == 200
    refused = request_token(server)
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limit_exceeded"
    assert admin(server, "stats")["rate_limited"]["token_budget"] == 1


def test_limits_can_be_switched_at_runtime(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    token = get_token(server)
    admin(server, "config", {"limits": {"daily_quota": 1}})
    assert api_get(server, token, "jobProfiles").status_code == 200
    assert api_get(server, token, "jobProfiles").status_code == 429
    admin(server, "config", {"limits": {"daily_quota": None}})
    assert api_get(server, token, "jobProfiles").status_code == 200
