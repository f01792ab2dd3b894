"""Injected faults: 5xx, latency, dropped connections, token revocation; seeded."""

from __future__ import annotations

import pytest
import requests

from tests.integration.sandbox.wire import (
    admin,
    api_get,
    assert_youforce_error,
    get_token,
    upload_v11,
)
from tests.plugins.sandbox_fixtures import SandboxFactory


def test_server_error_count(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    token = get_token(server)
    admin(server, "config", {"faults": {"server_error_count": 2}})
    for _ in range(2):
        response = api_get(server, token, "jobProfiles")
        assert response.status_code in (500, 503)
        assert set(assert_youforce_error(response, response.status_code)) == {"error"}
    assert api_get(server, token, "jobProfiles").status_code == 200
    assert admin(server, "stats")["faults"]["server_errors"] == 2


def test_faults_spare_the_token_endpoint_by_default(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(faults={"server_error_count": 1})
    token = get_token(server)
    assert api_get(server, token, "jobProfiles").status_code in (500, 503)


def test_server_error_rate_is_seeded(sandbox_factory: SandboxFactory) -> None:
    def pattern() -> list[int]:
        server = sandbox_factory(seed=42, faults={"server_error_rate": 0.5})
        token = get_token(server)
        return [api_get(server, token, "jobProfiles").status_code for _ in range(16)]

    first = pattern()
    assert first == pattern()
    assert 200 in first
    assert {500, 503} & set(first)


def test_added_latency_is_applied_and_recorded(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(faults={"latency_s": 0.05})
    token = get_token(server)
    assert api_get(server, token, "jobProfiles").status_code == 200
    entry = admin(server, "requests")["requests"][-1]
    assert entry["added_latency_s"] == 0.05
    assert admin(server, "stats")["faults"]["latency_added"] == 1


@pytest.mark.parametrize("phase", ["before_body", "after_body"])
def test_dropped_connection(sandbox_factory: SandboxFactory, phase: str) -> None:
    server = sandbox_factory(faults={"drop_phase": phase})
    token = get_token(server)
    admin(server, "config", {"faults": {"drop_count": 1}})
    with pytest.raises(requests.ConnectionError):
        upload_v11(server, token)
    assert upload_v11(server, token).status_code == 200
    dropped, accepted = admin(server, "requests")["requests"][-2:]
    assert dropped["fault"] == f"dropped_{phase}"
    assert dropped["status"] is None
    assert (dropped["body_size"] is None) == (phase == "before_body")
    assert accepted["status"] == 200
    assert admin(server, "stats")["faults"]["dropped"] == 1
    assert len(admin(server, "tickets")["tickets"]) == 1


def test_revocation_fault_invalidates_current_tokens(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    token = get_token(server)
    admin(server, "config", {"faults": {"revoke_count": 1}})
    assert_youforce_error(api_get(server, token, "jobProfiles"), 401)
    assert_youforce_error(api_get(server, token, "jobProfiles"), 401)
    assert api_get(server, get_token(server), "jobProfiles").status_code == 200
