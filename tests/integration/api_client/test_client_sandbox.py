"""The client against the real sandbox over loopback: wire formats, tokens, errors, faults."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import requests

from api_client import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectError,
    ConnectionDropped,
    DocumentType,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ReadTimeout,
    ServerError,
    TicketState,
    Timeouts,
    TransportError,
    UnexpectedStatusError,
    YouforceClient,
)
from sandbox import ClientApp, SandboxServer
from tests.pdf_samples import make_pdf

TENANT = "4028868"
PERSON = "191166"
PDF = make_pdf(text="client against the sandbox")


def _client(server: SandboxServer, **kwargs: Any) -> YouforceClient:
    return YouforceClient(
        api_url=server.url,
        token_url=server.token_url,
        client_id=kwargs.pop("client_id", "sandbox-client"),
        client_secret=kwargs.pop("client_secret", "sandbox-secret"),
        timeouts=kwargs.pop("timeouts", Timeouts(connect=2, read=5)),
        **kwargs,
    )


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[YouforceClient]:
    with _client(sandbox) as c:
        yield c


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "Diploma Jan (2024).pdf"
    path.write_bytes(PDF)
    return path


def _requests(server: SandboxServer) -> list[dict[str, Any]]:
    answer = requests.get(f"{server.url}/_sandbox/requests", timeout=5)
    answer.raise_for_status()
    return list(answer.json()["requests"])


def _stats(server: SandboxServer) -> dict[str, Any]:
    answer = requests.get(f"{server.url}/_sandbox/stats", timeout=5)
    answer.raise_for_status()
    return dict(answer.json())


def _patch(server: SandboxServer, patch: dict[str, Any]) -> None:
    requests.post(f"{server.url}/_sandbox/config", json=patch, timeout=5).raise_for_status()


def _api_requests(server: SandboxServer) -> list[dict[str, Any]]:
    return [r for r in _requests(server) if r["endpoint"] != "token"]


def test_v11_wire_format(client: YouforceClient, sandbox: SandboxServer, pdf: Path) -> None:
    receipt = client.upload_document(
        TENANT,
        PERSON,
        DocumentType.DIPLOMA,
        pdf,
        description="Diploma Jan",
        valid_from=date(2024, 5, 6),
    )
    assert receipt.size == len(PDF)
    assert receipt.tenant_id == TENANT
    assert receipt.description == "Diploma Jan"
    assert receipt.status.state is TicketState.IN_PROGRESS
    (entry,) = _api_requests(sandbox)
    assert entry["method"] == "POST"
    assert entry["path"] == f"/learning/v1.1/employees/{PERSON}/documents/diploma"
    assert entry["status"] == 200
    assert entry["headers"]["X-Raet-Tenant-Id"] == TENANT
    assert entry["headers"]["Accept"] == "application/json"
    assert "sandbox-secret" not in str(entry)
    assert int(entry["headers"]["Content-Length"]) == entry["body_size"]
    multipart = entry["multipart"]
    assert multipart["media_type"] == "multipart/form-data"
    parts = multipart["parts"]
    assert [p["name"] for p in parts] == ["Description", "ValidFrom", "file"]
    assert parts[0]["text"] == "Diploma Jan"
    assert parts[1]["text"] == "2024-05-06"
    assert parts[2]["filename"] == "Diploma Jan (2024).pdf"
    assert parts[2]["content_type"] == "application/pdf"
    assert parts[2]["size"] == len(PDF)
    assert parts[2]["sha256"] == hashlib.sha256(PDF).hexdigest()


def test_v11_without_valid_from_sends_it_empty(
    client: YouforceClient, sandbox: SandboxServer, pdf: Path
) -> None:
    client.upload_document(TENANT, PERSON, "careerOther", pdf, description="d", filename="o.pdf")
    (entry,) = _api_requests(sandbox)
    parts = entry["multipart"]["parts"]
    assert parts[1]["name"] == "ValidFrom"
    assert parts[1]["text"] == ""
    assert parts[2]["filename"] == "o.pdf"


@pytest.mark.parametrize("kind", list(DocumentType))
def test_every_document_type_and_its_status(
    client: YouforceClient, sandbox: SandboxServer, pdf: Path, kind: DocumentType
) -> None:
    receipt = client.upload_document(TENANT, PERSON, kind, pdf, description=kind.name)
    status = client.ticket_status(TENANT, receipt.ticket_id)
    assert status.state in (TicketState.IN_PROGRESS, TicketState.COMPLETE)
    paths = [e["path"] for e in _api_requests(sandbox)]
    assert paths[0].endswith(f"/documents/{kind.value}")
    assert paths[1] == f"/learning/v1.0/employees/documents/{receipt.ticket_id}/status"


def test_v10_wire_format(client: YouforceClient, sandbox: SandboxServer, pdf: Path) -> None:
    receipt = client.upload_certificate_v10(
        TENANT, PERSON, pdf, description="Certificaat", valid_from=date(2021, 1, 1)
    )
    assert receipt.ticket_id
    (entry,) = _api_requests(sandbox)
    assert entry["status"] == 200
    assert entry["path"] == f"/learning/v1.0/employees/{PERSON}/documents/certificate"
    multipart = entry["multipart"]
    assert multipart["media_type"] == "multipart/related"
    assert entry["content_type"] == (
        f'multipart/related; type="application/json"; boundary={multipart["boundary"]}'
    )
    metadata, file_part = multipart["parts"]
    assert metadata["headers"]["Content-Type"] == "application/json; charset=UTF-8"
    assert metadata["text"] == '{"Description": "Certificaat", "ValidFrom": "2021-01-01"}'
    assert file_part["content_type"] == "application/pdf"
    assert file_part["sha256"] == hashlib.sha256(PDF).hexdigest()


def _advance(server: SandboxServer, api_seconds: float) -> None:
    requests.post(
        f"{server.url}/_sandbox/clock/advance", json={"seconds": api_seconds}, timeout=5
    ).raise_for_status()


def test_ticket_completes(sandbox: SandboxServer, pdf: Path) -> None:
    _patch(sandbox, {"clock_frozen": True, "status_format": "numbers"})
    with _client(sandbox) as client:
        receipt = client.upload_document(TENANT, PERSON, "diploma", pdf, description="d")
        assert receipt.status.api_value == 0
        assert client.ticket_status(TENANT, receipt.ticket_id).api_value == 0
        _advance(sandbox, 1.0)  # the fixture's fixed ticket delay
        status = client.ticket_status(TENANT, receipt.ticket_id)
    assert status.state is TicketState.COMPLETE
    assert status.api_value == 1


def test_failing_person_gives_failed_ticket(sandbox: SandboxServer, pdf: Path) -> None:
    _patch(sandbox, {"clock_frozen": True})
    with _client(sandbox) as client:
        receipt = client.upload_document(TENANT, "900001", "diploma", pdf, description="d")
        _advance(sandbox, 1.0)
        status = client.ticket_status(TENANT, receipt.ticket_id)
    assert status.state is TicketState.FAILED
    assert status.error_messages


def test_token_is_reused(client: YouforceClient, sandbox: SandboxServer, pdf: Path) -> None:
    receipt = client.upload_document(TENANT, PERSON, "diploma", pdf, description="d")
    for _ in range(9):
        client.ticket_status(TENANT, receipt.ticket_id)
    stats = _stats(sandbox)
    assert stats["token_requests"] == 1
    assert stats["calls_by_endpoint"]["status"] == 9


def test_token_request_is_as_documented(client: YouforceClient, sandbox: SandboxServer) -> None:
    list(client.job_profiles(TENANT, take=1))[:1]
    token_entry = next(e for e in _requests(sandbox) if e["endpoint"] == "token")
    assert token_entry["status"] == 200
    assert token_entry["headers"]["Cache-Control"] == "no-cache"
    assert token_entry["form"]["grant_type"] == "client_credentials"
    assert token_entry["form"]["client_id"] == "sandbox-client"
    assert token_entry["form"]["tenant_id"] == TENANT
    assert token_entry["form"]["client_secret"] == "<redacted>"


def test_legacy_token_answer(sandbox: SandboxServer) -> None:
    _patch(sandbox, {"legacy_token_answer": True})
    with _client(sandbox) as client:
        assert client.tokens.token(TENANT).token_type == "BearerToken"


def test_revoked_token_is_refreshed_once(
    client: YouforceClient, sandbox: SandboxServer, pdf: Path
) -> None:
    receipt = client.upload_document(TENANT, PERSON, "diploma", pdf, description="d")
    requests.post(f"{sandbox.url}/_sandbox/revoke-tokens", timeout=5).raise_for_status()
    assert client.ticket_status(TENANT, receipt.ticket_id).state is TicketState.IN_PROGRESS
    statuses = [(e["endpoint"], e["status"]) for e in _requests(sandbox)]
    assert statuses == [
        ("token", 200),
        ("upload_v1.1", 200),
        ("status", 401),
        ("token", 200),
        ("status", 200),
    ]


def test_revoked_upload_resends_the_whole_body(
    client: YouforceClient, sandbox: SandboxServer, pdf: Path
) -> None:
    client.tokens.token(TENANT)
    requests.post(f"{sandbox.url}/_sandbox/revoke-tokens", timeout=5).raise_for_status()
    client.upload_document(TENANT, PERSON, "diploma", pdf, description="d")
    uploads = [e for e in _requests(sandbox) if e["endpoint"] == "upload_v1.1"]
    assert [u["status"] for u in uploads] == [401, 200]
    assert uploads[0]["body_sha256"] != uploads[1]["body_sha256"]  # fresh boundary per attempt
    assert uploads[0]["body_size"] == uploads[1]["body_size"]


def test_always_revoked_gives_authentication_error(sandbox: SandboxServer) -> None:
    _patch(sandbox, {"faults": {"revoke_rate": 1.0}})
    with _client(sandbox) as client, pytest.raises(AuthenticationError) as info:
        client.ticket_status(TENANT, "7ca486f6-c730-4d50-a2ec-31a3a1373366")
    assert info.value.correlation_id
    assert _stats(sandbox)["token_requests"] == 2


def test_wrong_secret(sandbox: SandboxServer) -> None:
    with (
        _client(sandbox, client_secret="WRONG-s3cr3t-42") as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.ticket_status(TENANT, "7ca486f6-c730-4d50-a2ec-31a3a1373366")
    assert info.value.error_code == "invalid_client"
    assert "WRONG-s3cr3t-42" not in str(info.value) + repr(info.value) + (info.value.body or "")
    assert _stats(sandbox)["calls_by_endpoint"] == {"token": 1}


def test_paging_across_pages(client: YouforceClient, sandbox: SandboxServer) -> None:
    all_persons = list(client.persons(TENANT, take=1000))
    paged = list(client.persons(TENANT, take=37))
    assert [r.id for r in paged] == [r.id for r in all_persons]
    assert len(paged) > 3 * 37
    assert any(r.is_deleted for r in paged)
    deleted = next(r for r in paged if r.is_deleted)
    assert set(deleted.data) <= {"id", "isDeleted", "shortName"}
    reads = [e for e in _api_requests(sandbox) if e["endpoint"] == "persons"]
    assert len(reads) == 1 + -(-len(paged) // 37)
    assert all(e["status"] == 200 for e in reads)
    assert all(e["headers"]["X-Raet-Tenant-Id"] == TENANT for e in reads)


def test_values_key_and_filters(sandbox: SandboxServer) -> None:
    _patch(sandbox, {"records_key": "values"})
    with _client(sandbox) as client:
        employments = list(client.employments(TENANT, person_code=PERSON))
        assert employments
        assert all(r.get("personCode") == PERSON for r in employments if not r.is_deleted)
        early = datetime(2000, 1, 1, tzinfo=UTC)
        late = datetime(2100, 1, 1, tzinfo=UTC)
        assert list(client.persons(TENANT, changed_after=late)) == []
        assert len(list(client.persons(TENANT, changed_after=early, changed_until=late, take=500)))
    query = _api_requests(sandbox)[-1]["query"]
    assert "changedAfter=2000-01-01T00:00:00.000Z" in query
    assert "changedUntil=2100-01-01T00:00:00.000Z" in query


def test_other_readers(client: YouforceClient) -> None:
    units = list(client.organization_units(TENANT))
    assert units
    unit = next(u for u in units if not u.is_deleted)
    short_name = unit.get("shortName")
    assert [u.id for u in client.organization_units(TENANT, short_name=short_name)] == [unit.id]
    profiles = list(client.job_profiles(TENANT, take=5))
    assert profiles
    roles = list(client.role_assignments(TENANT, person_id=PERSON))
    assert all(r.get("personId") == PERSON for r in roles if not r.is_deleted)
    employment = next(e for e in client.employments(TENANT, person_code=PERSON))
    allocation_id = f"{PERSON} {employment.get('employmentCode')} 0"
    allocation = client.cost_allocation(TENANT, allocation_id)
    assert allocation.id == allocation_id


@pytest.mark.parametrize("code", ["../x", "a/b", "a?b", "a#b", "%2e%2e", "", "x" * 33, "ü1"])
def test_bad_person_codes_never_reach_the_sandbox(
    client: YouforceClient, sandbox: SandboxServer, pdf: Path, code: str
) -> None:
    with pytest.raises(InvalidRequestError):
        client.upload_document(TENANT, code, "diploma", pdf, description="d")
    with pytest.raises(InvalidRequestError):
        client.upload_certificate_v10(TENANT, code, pdf, description="d")
    with pytest.raises(InvalidRequestError):
        client.ticket_status(TENANT, f"../{code}")
    assert _requests(sandbox) == []


def test_bad_request(client: YouforceClient) -> None:
    with pytest.raises(BadRequestError) as info:
        client.ticket_status(TENANT, "not-a-uuid")
    assert info.value.status_code == 400
    assert not info.value.retryable
    assert info.value.correlation_id


def test_not_found(client: YouforceClient, pdf: Path) -> None:
    with pytest.raises(NotFoundError) as info:
        client.upload_document(TENANT, "999999", "diploma", pdf, description="d")
    assert "999999" in (info.value.api_message or "")
    with pytest.raises(NotFoundError):
        client.ticket_status(TENANT, "7ca486f6-c730-4d50-a2ec-31a3a1373366")


def test_not_a_pdf_is_bad_request(client: YouforceClient, tmp_path: Path) -> None:
    fake = tmp_path / "fake.pdf"
    fake.write_bytes(b"hello, not a pdf")
    with pytest.raises(BadRequestError):
        client.upload_document(TENANT, PERSON, "diploma", fake, description="d")


def test_permission_denied(sandbox_factory: Any, pdf: Path) -> None:
    server = sandbox_factory(
        clients=[ClientApp("sandbox-client", "sandbox-secret", scopes=("Get_Basic",))]
    )
    with _client(server) as client:
        with pytest.raises(PermissionDeniedError) as info:
            client.upload_document(TENANT, PERSON, "diploma", pdf, description="d")
        assert not info.value.retryable
        assert list(client.job_profiles(TENANT, take=1))


def test_server_error(sandbox: SandboxServer) -> None:
    _patch(sandbox, {"faults": {"server_error_count": 1, "server_error_statuses": [503]}})
    with _client(sandbox) as client, pytest.raises(ServerError) as info:
        list(client.persons(TENANT))
    assert info.value.status_code == 503
    assert info.value.retryable
    assert len(_api_requests(sandbox)) == 1


def test_conflict(sandbox: SandboxServer) -> None:
    _patch(sandbox, {"faults": {"server_error_count": 1, "server_error_statuses": [409]}})
    with _client(sandbox) as client, pytest.raises(ConflictError) as info:
        list(client.persons(TENANT))
    assert info.value.retryable


def test_rate_limit(sandbox: SandboxServer) -> None:
    _patch(sandbox, {"limits": {"daily_quota": 1, "send_retry_after": True}})
    with _client(sandbox) as client:
        list(client.job_profiles(TENANT, take=1000))
        with pytest.raises(RateLimitError) as info:
            list(client.job_profiles(TENANT))
    assert info.value.retryable
    assert info.value.retry_after is not None
    assert info.value.retry_after >= 1


def test_unexpected_status(sandbox: SandboxServer, pdf: Path) -> None:
    _patch(sandbox, {"max_request_bytes": 100})
    with _client(sandbox) as client, pytest.raises(UnexpectedStatusError) as info:
        client.upload_document(TENANT, PERSON, "diploma", pdf, description="d")
    assert info.value.status_code == 413


def test_read_timeout(sandbox: SandboxServer) -> None:
    with _client(sandbox, timeouts=Timeouts(connect=2, read=0.3)) as client:
        client.tokens.token(TENANT)
        requests.post(f"{sandbox.url}/_sandbox/hold", json={"held": True}, timeout=5)
        try:
            with pytest.raises(ReadTimeout) as info:
                list(client.persons(TENANT))
        finally:
            requests.post(f"{sandbox.url}/_sandbox/hold", json={"held": False}, timeout=5)
    assert info.value.retryable
    assert info.value.maybe_delivered


@pytest.mark.parametrize("phase", ["before_body", "after_body"])
def test_dropped_connection(sandbox: SandboxServer, pdf: Path, phase: str) -> None:
    with _client(sandbox) as client:
        client.tokens.token(TENANT)
        _patch(sandbox, {"faults": {"drop_count": 1, "drop_phase": phase}})
        with pytest.raises(TransportError) as info:
            client.upload_document(TENANT, PERSON, "diploma", pdf, description="d")
        assert isinstance(info.value, ConnectionDropped)
        assert info.value.retryable
        assert client.upload_document(TENANT, PERSON, "diploma", pdf, description="d").ticket_id
    uploads = [e for e in _requests(sandbox) if e["path"].startswith("/learning/")]
    assert [e["fault"] for e in uploads] == [f"dropped_{phase}", None]
    assert [e["status"] for e in uploads] == [None, 200]


def test_connect_error_when_nothing_listens(sandbox_factory: Any) -> None:
    server = sandbox_factory()
    url, token_url = server.url, server.token_url
    server.stop()
    with (
        YouforceClient(
            api_url=url,
            token_url=token_url,
            client_id="sandbox-client",
            client_secret="sandbox-secret",
        ) as client,
        pytest.raises(ConnectError) as info,
    ):
        client.ticket_status(TENANT, "7ca486f6-c730-4d50-a2ec-31a3a1373366")
    assert info.value.retryable
    assert not info.value.maybe_delivered
    assert info.value.url == token_url


def _seed(server: SandboxServer, **body: Any) -> None:
    requests.post(f"{server.url}/_sandbox/persons", json=body, timeout=5).raise_for_status()


@pytest.mark.parametrize("records_key", ["value", "values"])
def test_persons_changed_after_a_time_across_pages(
    sandbox: SandboxServer, records_key: str
) -> None:
    _patch(sandbox, {"records_key": records_key})
    people = [
        {"personCode": code, "emailAddresses": [{"type": "Business", "address": f"{code}@x.nl"}]}
        for code in ("555101", "555102", "555103", "555104", "555105")
    ]
    _seed(sandbox, tenant_id=TENANT, changed_at="2024-08-01T10:00:00.000Z", persons=people)
    _seed(sandbox, tenant_id=TENANT, changed_at="2024-08-02T10:00:00.000Z", deleted=["555102"])
    since = datetime(2024, 8, 1, tzinfo=UTC)
    with _client(sandbox) as client:
        records = list(client.persons(TENANT, changed_after=since, take=2))
    assert [r.id for r in records] == ["555101", "555102", "555103", "555104", "555105"]
    deleted = records[1]
    assert deleted.is_deleted
    assert dict(deleted.data) == {"id": "555102", "isDeleted": True, "shortName": "555102"}
    assert records[0].get("emailAddresses") == [{"type": "Business", "address": "555101@x.nl"}]
    reads = [e for e in _api_requests(sandbox) if e["endpoint"] == "persons"]
    assert len(reads) == 3
    queries = [parse_qs(e["query"]) for e in reads]
    assert all(q["take"] == ["2"] for q in queries)
    assert all(q["changedAfter"] == ["2024-08-01T00:00:00.000Z"] for q in queries)
    with _client(sandbox) as client:
        later = datetime(2024, 8, 1, 10, tzinfo=UTC)
        assert [r.id for r in client.persons(TENANT, changed_after=later)] == ["555102"]


def test_the_client_follows_the_next_link_as_given(sandbox: SandboxServer) -> None:
    with _client(sandbox) as client:
        list(client.persons(TENANT, take=250))
    first, second = [e for e in _api_requests(sandbox) if e["endpoint"] == "persons"]
    token = client.tokens.token(TENANT)
    page = requests.get(
        f"{sandbox.url}{first['path']}?{first['query']}",
        headers={"Authorization": token.authorization, "X-Raet-Tenant-Id": TENANT},
        timeout=5,
    ).json()
    link = urlsplit(page["nextLink"])
    assert (second["path"], parse_qsl(second["query"])) == (link.path, parse_qsl(link.query))
