"""The `/_sandbox/` endpoints: what the client sent, exactly, and never a secret."""

from __future__ import annotations

import hashlib

import pytest
import requests

from sandbox import SandboxServer
from sandbox.clock import format_utc_millis
from tests.integration.sandbox.wire import (
    PDF,
    TIMEOUT,
    admin,
    advance,
    api_get,
    assert_youforce_error,
    get_token,
    request_token,
    status,
    upload_v10,
    upload_v11,
)
from tests.plugins.sandbox_fixtures import SandboxFactory


def admin_texts(server: SandboxServer) -> str:
    return "".join(
        requests.get(f"{server.url}/_sandbox/{name}", timeout=TIMEOUT).text
        for name in ("requests", "stats", "config", "tickets")
    )


def test_upload_is_logged_part_by_part(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    answer = upload_v11(sandbox, token, description="Diploma Python").json()
    entry = admin(sandbox, "requests")["requests"][-1]
    assert (entry["method"], entry["path"], entry["status"]) == (
        "POST",
        "/learning/v1.1/employees/191166/documents/diploma",
        200,
    )
    assert entry["ticket_id"] == answer["ticketId"]
    assert entry["headers"]["Authorization"] == "Bearer <token#1>"
    assert entry["headers"]["X-Raet-Tenant-Id"] == "4028868"
    assert entry["arrived_at"] <= entry["completed_at"]
    parts = entry["multipart"]["parts"]
    assert [part["name"] for part in parts] == ["Description", "ValidFrom", "file"]
    assert parts[0]["text"] == "Diploma Python"
    assert parts[1]["text"] == "2024-03-01"
    file_part = parts[2]
    assert file_part["filename"] == "diploma.pdf"
    assert file_part["content_type"] == "application/pdf"
    assert file_part["size"] == len(PDF)
    assert file_part["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert file_part["text"] is None
    assert 'filename="diploma.pdf"' in file_part["headers"]["Content-Disposition"]


def test_v10_wire_format_is_logged(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    upload_v10(sandbox, token, {"Description": "Cert"})
    entry = admin(sandbox, "requests")["requests"][-1]
    assert entry["multipart"]["media_type"] == "multipart/related"
    meta, file_part = entry["multipart"]["parts"]
    assert meta["content_type"] == "application/json"
    assert meta["headers"]["Content-Type"] == "application/json; charset=UTF-8"
    assert meta["text"] == '{"Description": "Cert"}'
    assert file_part["sha256"] == hashlib.sha256(PDF).hexdigest()


def test_rejected_uploads_are_logged_with_status_and_correlation_id(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    response = upload_v11(sandbox, token, person="000000")
    entry = admin(sandbox, "requests")["requests"][-1]
    assert entry["status"] == 404
    assert entry["correlation_id"] == response.headers["X-Correlation-Id"]
    assert entry["ticket_id"] is None


def test_no_secret_or_token_is_ever_shown(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    upload_v11(sandbox, token)
    api_get(sandbox, token, "persons", take="1")
    request_token(sandbox, client_secret="sandbox-secret-typo")
    request_token(sandbox, clientSecret="sandbox-secret")  # secret in a wrong field
    requests.get(
        f"{sandbox.url}/learning/v1.0/persons",
        params={"access_token": token},
        headers={"Authorization": f"Basic {token}"},
        timeout=TIMEOUT,
    )
    texts = admin_texts(sandbox)
    assert "sandbox-secret" not in texts
    assert token not in texts
    token_entry = admin(sandbox, "requests")["requests"][0]
    assert token_entry["form"]["client_secret"] == "<redacted>"
    assert token_entry["form"]["client_id"] == "sandbox-client"


def test_stats_count_calls_by_endpoint_and_uploads(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    upload_v11(sandbox, token)
    upload_v11(sandbox, token, doc_type="careerMail")
    api_get(sandbox, token, "persons")
    stats = admin(sandbox, "stats")
    assert stats["calls_by_endpoint"] == {"token": 1, "upload_v1.1": 2, "persons": 1}
    assert stats["uploads_accepted"] == 2
    assert stats["responses_by_status"] == {"200": 4}


def test_reset_forgets_requests_tickets_and_counters(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    upload_v11(sandbox, token)
    assert admin(sandbox, "reset") == {"reset": True}
    assert admin(sandbox, "requests")["requests"] == []
    assert admin(sandbox, "tickets")["tickets"] == []
    assert admin(sandbox, "stats")["uploads_accepted"] == 0
    assert upload_v11(sandbox, token).status_code == 200  # tokens survive a reset


def test_since_returns_only_newer_entries(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    api_get(sandbox, token, "jobProfiles")
    last = admin(sandbox, "requests")["requests"][-1]["seq"]
    api_get(sandbox, token, "persons")
    newer = requests.get(f"{sandbox.url}/_sandbox/requests?since={last}", timeout=TIMEOUT).json()
    assert [entry["path"] for entry in newer["requests"]] == ["/learning/v1.0/persons"]


@pytest.mark.parametrize(
    "path", ["/learning/v1.0/_sandbox/requests", "/learning/_sandbox/stats", "/_sandbox"]
)
def test_admin_is_not_reachable_through_api_paths(sandbox: SandboxServer, path: str) -> None:
    token = get_token(sandbox)
    response = requests.get(
        sandbox.url + path,
        headers={"Authorization": f"Bearer {token}", "X-Raet-Tenant-Id": "4028868"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 404
    assert "requests" not in response.json()


def test_bad_config_patch_is_400_and_changes_nothing(sandbox: SandboxServer) -> None:
    response = requests.post(
        f"{sandbox.url}/_sandbox/config",
        json={"status_format": "numbers", "faults": {"drop_rate": 7}},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    assert admin(sandbox, "config")["status_format"] == "names"


@pytest.mark.parametrize("shape", ["flat", "nested"])
def test_error_shape_is_configurable(sandbox_factory: SandboxFactory, shape: str) -> None:
    server = sandbox_factory(error_shape=shape)
    body = assert_youforce_error(upload_v11(server, None), 401)
    if shape == "flat":
        assert body["statusCode"] == 401
        assert body["errorCode"]
    else:
        assert set(body["error"]) == {"message", "correlationId", "issuedAt", "errorCode"}


def test_each_request_records_its_arrival_in_api_seconds_and_its_kind(
    sandbox_factory: SandboxFactory,
) -> None:
    server = sandbox_factory(clock_frozen=True, limits={"spike_per_minute": 100.0})
    start = admin(server, "clock")["api_seconds"]
    token = get_token(server)
    advance(server, 0.6)
    ticket_id = upload_v11(server, token).json()["ticketId"]
    advance(server, 0.6)
    assert status(server, token, ticket_id).status_code == 200
    advance(server, 0.25)
    assert api_get(server, token, "persons", take="1").status_code == 429
    advance(server, 0.35)
    assert api_get(server, token, "employees").status_code == 404
    entries = admin(server, "requests")["requests"]
    assert [(e["kind"], e["status"], e["limit"]) for e in entries] == [
        ("token", 200, None),
        ("upload", 200, None),
        ("status", 200, None),
        ("read", 429, "spike"),
        ("unknown", 404, None),
    ]
    offsets = [round(e["arrived_api_s"] - start, 6) for e in entries]
    assert offsets == [0.0, 0.6, 1.2, 1.45, 1.8]
    assert [e["arrived_api_time"] for e in entries] == [
        format_utc_millis(e["arrived_api_s"]) for e in entries
    ]


def test_arrival_times_never_decrease(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    for _ in range(20):
        api_get(sandbox, token, "jobProfiles")
    arrivals = [e["arrived_api_s"] for e in admin(sandbox, "requests")["requests"]]
    assert len(arrivals) == 21
    assert arrivals == sorted(arrivals)
