"""The token endpoint is as strict as Visma Connect: form fields, Cache-Control, credentials."""

from __future__ import annotations

import pytest
import requests

from sandbox import SandboxServer
from tests.integration.sandbox.wire import (
    TIMEOUT,
    advance,
    api_get,
    assert_youforce_error,
    get_token,
    request_token,
    token_form,
)
from tests.plugins.sandbox_fixtures import SandboxFactory


def test_token_answer_shape(sandbox: SandboxServer) -> None:
    response = request_token(sandbox)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type", "scope"}
    assert body["expires_in"] == 3600
    assert body["token_type"] == "Bearer"
    assert body["scope"].split() == ["Invitation_only", "Get_Basic", "Upload_documents"]
    assert len(body["access_token"]) >= 32
    assert response.headers["Cache-Control"] == "no-store"


def test_tokens_are_opaque_and_distinct(sandbox: SandboxServer) -> None:
    first, second = get_token(sandbox), get_token(sandbox)
    assert first != second
    assert "sandbox" not in first


def test_missing_cache_control_is_refused(sandbox: SandboxServer) -> None:
    response = request_token(sandbox, headers={})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "Cache-Control" in response.json()["error_description"]


def test_wrong_cache_control_is_refused(sandbox: SandboxServer) -> None:
    response = request_token(sandbox, headers={"Cache-Control": "max-age=0"})
    assert response.status_code == 400


def test_wrong_secret_is_401_invalid_client(sandbox: SandboxServer) -> None:
    response = request_token(sandbox, client_secret="guess")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_unknown_client_is_401(sandbox: SandboxServer) -> None:
    assert request_token(sandbox, client_id="someone-else").status_code == 401


@pytest.mark.parametrize("missing", ["grant_type", "client_id", "client_secret", "tenant_id"])
def test_each_field_is_required(sandbox: SandboxServer, missing: str) -> None:
    response = request_token(sandbox, **{missing: None})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert missing in response.json()["error_description"]


def test_wrong_grant_type(sandbox: SandboxServer) -> None:
    response = request_token(sandbox, grant_type="password")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_tenant_not_linked_to_the_client(sandbox: SandboxServer) -> None:
    response = request_token(sandbox, tenant_id="9999999")
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_tenant_in_a_header_instead_of_the_form_is_refused(sandbox: SandboxServer) -> None:
    response = requests.post(
        sandbox.token_url,
        data=token_form(tenant_id=None),
        headers={"Cache-Control": "no-cache", "tenant_id": "4028868"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400


def test_json_body_is_refused(sandbox: SandboxServer) -> None:
    response = requests.post(
        sandbox.token_url, json=token_form(), headers={"Cache-Control": "no-cache"}, timeout=TIMEOUT
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_unknown_extra_field_is_refused(sandbox: SandboxServer) -> None:
    assert request_token(sandbox, audience="x").status_code == 400


def test_legacy_answer_has_string_expires_in(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(legacy_token_answer=True, token_lifetime_s=7200.0)
    body = request_token(server).json()
    assert body["expires_in"] == "7200"
    scaled = sandbox_factory(legacy_token_answer=True, token_lifetime_s=3600.0, time_scale=60.0)
    assert request_token(scaled).json()["expires_in"] == "60"
    assert body["token_type"] == "BearerToken"


def test_token_expires_in_api_time(sandbox_factory: SandboxFactory) -> None:
    scaled = sandbox_factory(token_lifetime_s=3600.0, time_scale=7200.0)
    assert request_token(scaled).json()["expires_in"] == 1, "0.5 s on the client's clock"
    server = sandbox_factory(token_lifetime_s=3600.0, clock_frozen=True)
    token = get_token(server)
    advance(server, 3599.999)
    assert api_get(server, token, "jobProfiles").status_code == 200
    advance(server, 0.001)
    response = api_get(server, token, "jobProfiles")
    assert_youforce_error(response, 401, "keymanagement.service.access_token_expired")


def test_token_requests_are_counted(sandbox: SandboxServer) -> None:
    for _ in range(3):
        get_token(sandbox)
    request_token(sandbox, client_secret="wrong")
    stats = requests.get(f"{sandbox.url}/_sandbox/stats", timeout=TIMEOUT).json()
    assert stats["token_requests"] == 4
    assert stats["tokens_issued"] == 3
