"""The client over a scripted transport: headers, 401 refresh, governor, timeouts, readers."""

from __future__ import annotations

import io
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO

import pytest
import requests
import urllib3.exceptions

from api_client import (
    AuthenticationError,
    ConnectError,
    ConnectionDropped,
    ConnectTimeout,
    CredentialsRejectedError,
    DocumentType,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ReadTimeout,
    ResponseFormatError,
    ServerError,
    TicketState,
    YouforceClient,
)

from .fakes import API_URL, SECRET, TENANT, FakeTransport, RecordingGovernor


class _Unseekable(io.BytesIO):
    def seekable(self) -> bool:
        return False


RECEIPT = {
    "ticketId": "7ca486f6-c730-4d50-a2ec-31a3a1373366",
    "description": "d",
    "size": 53,
    "tenantId": "4028868",
    "creationDateTime": "2022-04-01T13:53:30.3985949",
    "status": "InProgress",
    "errorMessages": [],
}


def test_upload_v11_sends_the_documented_request(
    client: YouforceClient, transport: FakeTransport, pdf: Path
) -> None:
    transport.reply(200, RECEIPT, headers={"X-Correlation-Id": "corr-1"})
    receipt = client.upload_document(
        TENANT,
        "191166",
        DocumentType.DIPLOMA,
        pdf,
        description="Diploma",
        valid_from=date(2024, 1, 2),
    )
    assert receipt.ticket_id == RECEIPT["ticketId"]
    assert receipt.size == 53
    assert receipt.tenant_id == "4028868"
    assert receipt.created_at_raw == "2022-04-01T13:53:30.3985949"
    assert receipt.status.state is TicketState.IN_PROGRESS
    assert receipt.correlation_id == "corr-1"
    (call,) = transport.api_calls
    assert call.method == "POST"
    assert call.url == f"{API_URL}/learning/v1.1/employees/191166/documents/diploma"
    assert call.headers["Authorization"] == "Bearer tok-1"
    assert call.headers["Accept"] == "application/json"
    assert call.headers["X-Raet-Tenant-Id"] == TENANT
    assert call.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert int(call.headers["Content-Length"]) == len(call.body)
    assert "Transfer-Encoding" not in call.headers
    assert pdf.read_bytes() in call.body
    assert b'filename="diploma_2024.pdf"' in call.body


@pytest.mark.parametrize("kind", list(DocumentType))
def test_every_type_has_its_path(
    client: YouforceClient, transport: FakeTransport, pdf: Path, kind: DocumentType
) -> None:
    transport.reply(200, RECEIPT)
    client.upload_document(TENANT, "191166", kind.value.upper(), pdf, description="d")
    assert transport.api_calls[0].url.endswith(f"/documents/{kind.value}")


def test_upload_v10(client: YouforceClient, transport: FakeTransport, pdf: Path) -> None:
    transport.reply(200, RECEIPT)
    client.upload_certificate_v10(TENANT, "191166", pdf, description="c", filename="c.pdf")
    (call,) = transport.api_calls
    assert call.url == f"{API_URL}/learning/v1.0/employees/191166/documents/certificate"
    assert call.headers["Content-Type"].startswith('multipart/related; type="application/json"; ')
    assert b"Content-Type: application/json; charset=UTF-8" in call.body


@pytest.mark.parametrize("code", ["../x", "a/b", "a?b", "a#b", "%2e%2e", "", "x" * 33, "ü"])
def test_bad_person_code_makes_no_call(
    client: YouforceClient,
    transport: FakeTransport,
    governor: RecordingGovernor,
    pdf: Path,
    code: str,
) -> None:
    with pytest.raises(InvalidRequestError):
        client.upload_document(TENANT, code, "diploma", pdf, description="d")
    with pytest.raises(InvalidRequestError):
        client.upload_certificate_v10(TENANT, code, pdf, description="d")
    with pytest.raises(InvalidRequestError):
        client.employments(TENANT, person_code=code)
    assert transport.calls == []
    assert governor.slots == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"document_type": "cv"}, "unknown document type"),
        ({"description": "  "}, "description"),
        ({"description": "a\x00b"}, "control"),
        ({"valid_from": "2024-01-01"}, "valid_from"),
        ({"filename": "../evil.pdf"}, "filename"),
        ({"pdf": "/nonexistent/file.pdf"}, "cannot read"),
        ({"tenant_id": "40\r\n28"}, "tenant"),
    ],
)
def test_bad_upload_arguments_make_no_call(
    client: YouforceClient,
    transport: FakeTransport,
    pdf: Path,
    kwargs: dict[str, object],
    match: str,
) -> None:
    args: dict[str, object] = {
        "tenant_id": TENANT,
        "person_code": "191166",
        "document_type": "diploma",
        "pdf": pdf,
        "description": "d",
    }
    args.update(kwargs)
    with pytest.raises(InvalidRequestError, match=match):
        client.upload_document(**args)  # type: ignore[arg-type]
    assert transport.calls == []


def test_401_refreshes_and_retries_once(
    client: YouforceClient, transport: FakeTransport, pdf: Path
) -> None:
    transport.reply(401, {"message": "expired"})
    transport.reply(200, RECEIPT)
    receipt = client.upload_document(TENANT, "191166", "diploma", pdf, description="d")
    assert receipt.ticket_id == RECEIPT["ticketId"]
    first, second = transport.api_calls
    assert first.headers["Authorization"] == "Bearer tok-1"
    assert second.headers["Authorization"] == "Bearer tok-2"
    assert len(transport.token_calls) == 2
    assert pdf.read_bytes() in second.body
    assert int(second.headers["Content-Length"]) == len(second.body)


def test_upload_from_a_stream_sends_it_from_where_it_stands(
    client: YouforceClient, transport: FakeTransport, pdf: Path
) -> None:
    content = pdf.read_bytes()
    stream = io.BytesIO(b"ignored prefix" + content)
    stream.seek(len(b"ignored prefix"))
    transport.reply(401, {"message": "expired"})  # the retry needs the whole stream again
    transport.reply(200, RECEIPT)
    client.upload_document(
        TENANT, "191166", "diploma", stream, description="d", filename="from-store.pdf"
    )
    first, second = transport.api_calls
    for call in (first, second):
        assert int(call.headers["Content-Length"]) == len(call.body)
        assert b"\r\n\r\n" + content + b"\r\n--" in call.body
        assert b"ignored prefix" not in call.body
        assert b'filename="from-store.pdf"' in call.body


def test_upload_from_a_stream_of_the_expected_size(
    client: YouforceClient, transport: FakeTransport, pdf: Path
) -> None:
    content = pdf.read_bytes()
    transport.reply(200, RECEIPT)
    client.upload_certificate_v10(
        TENANT, "191166", io.BytesIO(content), description="c", filename="c.pdf", size=len(content)
    )
    (call,) = transport.api_calls
    assert content + b"\r\n--" in call.body


@pytest.mark.parametrize(
    ("stream", "filename", "match"),
    [
        pytest.param(io.BytesIO(b"%PDF"), None, "filename is required", id="no-name"),
        pytest.param(_Unseekable(b"%PDF"), "a.pdf", "seekable", id="unseekable"),
        pytest.param(io.BytesIO(b"%PDF-1.4 longer"), "a.pdf", "not the 4 expected", id="size"),
    ],
)
def test_a_stream_that_cannot_be_sent_again_is_refused_before_any_call(
    client: YouforceClient,
    transport: FakeTransport,
    stream: BinaryIO,
    filename: str | None,
    match: str,
) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        client.upload_document(
            TENANT, "191166", "diploma", stream, description="d", filename=filename, size=4
        )
    assert transport.calls == []


def test_second_401_raises(client: YouforceClient, transport: FakeTransport) -> None:
    transport.reply(401, {"message": "no"})
    transport.reply(401, {"message": "still no"})
    with pytest.raises(AuthenticationError, match="still no"):
        client.ticket_status(TENANT, "T-1")
    assert len(transport.api_calls) == 2
    assert len(transport.token_calls) == 2


def test_a_fresh_token_refused_by_the_api_stops_further_token_requests(
    client: YouforceClient, transport: FakeTransport, pdf: Path
) -> None:
    transport.reply(401, {"message": "no"})
    transport.reply(401, {"message": "app not subscribed"})
    with pytest.raises(CredentialsRejectedError) as first:
        client.ticket_status(TENANT, "T-1")
    transport.reply(401, {"message": "app not subscribed"})
    with pytest.raises(CredentialsRejectedError) as second:
        client.upload_document(TENANT, "191166", "diploma", pdf, description="d")

    assert first.value.retry_at is not None
    assert "app not subscribed" in str(first.value)
    assert second.value.from_memory is True, "no token was requested for the second call"
    assert len(transport.token_calls) == 2
    assert len(transport.api_calls) == 3


def test_token_is_reused(client: YouforceClient, transport: FakeTransport) -> None:
    for _ in range(5):
        transport.reply(200, {"status": "Complete", "errorMessages": []})
        assert client.ticket_status(TENANT, "T-1").state is TicketState.COMPLETE
    assert len(transport.token_calls) == 1


@pytest.mark.parametrize(
    ("status", "cls"), [(500, ServerError), (429, RateLimitError), (404, NotFoundError)]
)
def test_errors_are_not_retried(
    client: YouforceClient, transport: FakeTransport, pdf: Path, status: int, cls: type
) -> None:
    transport.reply(status, {"message": "m"}, headers={"Retry-After": "3"})
    with pytest.raises(cls) as info:
        client.upload_document(TENANT, "191166", "diploma", pdf, description="d")
    assert len(transport.api_calls) == 1
    assert info.value.retry_after == 3.0
    assert info.value.url == f"{API_URL}/learning/v1.1/employees/191166/documents/diploma"
    assert info.value.method == "POST"


def test_governor_slot_around_every_call(
    client: YouforceClient, transport: FakeTransport, governor: RecordingGovernor, pdf: Path
) -> None:
    transport.reply(401, {})
    transport.reply(200, RECEIPT)
    transport.reply(429, {}, headers={"Retry-After": "9"})
    client.upload_document(TENANT, "191166", "diploma", pdf, description="d")
    with pytest.raises(RateLimitError):
        client.ticket_status(TENANT, "T-1")
    assert [(s.kind, s.tenant, s.recorded) for s in governor.slots] == [
        ("token", TENANT, [(200, None)]),
        ("upload", TENANT, [(401, None)]),
        ("token", TENANT, [(200, None)]),
        ("upload", TENANT, [(200, None)]),
        ("status", TENANT, [(429, 9.0)]),
    ]
    assert governor.max_open == 1


def test_the_slot_is_told_which_limit_a_429_named(
    client: YouforceClient, transport: FakeTransport, governor: RecordingGovernor
) -> None:
    transport.reply(200, {"status": "InProgress", "errorMessages": []})
    transport.reply(
        429,
        {
            "message": "Spike arrest violation. Allowed rate : 100pm.",
            "errorCode": "policies.ratelimit.SpikeArrestViolation",
        },
    )
    client.ticket_status(TENANT, "T-1")
    with pytest.raises(RateLimitError) as info:
        client.ticket_status(TENANT, "T-1")
    assert info.value.limit == "spike"
    assert [s.limits for s in governor.slots if s.kind == "status"] == [[None], ["spike"]]


def test_transport_failure_recorded_as_none(
    client: YouforceClient, transport: FakeTransport, governor: RecordingGovernor
) -> None:
    transport.api.append(requests.ReadTimeout("slow"))
    with pytest.raises(ReadTimeout):
        client.ticket_status(TENANT, "T-1")
    assert governor.slots[-1].recorded == [(None, None)]


def test_governor_exception_propagates(session: requests.Session, transport: FakeTransport) -> None:
    class QuotaSpent(Exception):
        pass

    class Spent:
        def slot(self, kind: str, tenant_id: str):  # type: ignore[no-untyped-def]
            raise QuotaSpent(kind)

    c = YouforceClient(
        api_url=API_URL,
        token_url="https://login.test/connect/token",
        client_id="c",
        client_secret=SECRET,
        governor=Spent(),
        session=session,
    )
    with pytest.raises(QuotaSpent):
        c.ticket_status(TENANT, "T-1")
    assert transport.calls == []


def test_timeouts_on_every_call(
    client: YouforceClient, transport: FakeTransport, pdf: Path
) -> None:
    transport.reply(200, RECEIPT)
    transport.reply(200, {"status": 1, "errorMessages": []})
    transport.reply(200, {"value": []})
    client.upload_document(TENANT, "191166", "diploma", pdf, description="d")
    client.ticket_status(TENANT, "T-1")
    list(client.persons(TENANT))
    assert len(transport.calls) == 4
    assert all(call.timeout == (1.5, 7.0) for call in transport.calls)


def _conn_error(reason: Exception) -> requests.ConnectionError:
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raised", "cls"),
    [
        (requests.ConnectTimeout("t"), ConnectTimeout),
        (requests.ReadTimeout("t"), ReadTimeout),
        (_conn_error(urllib3.exceptions.NewConnectionError(None, "refused")), ConnectError),  # type: ignore[arg-type]
        (requests.ConnectionError(urllib3.exceptions.ProtocolError("aborted")), ConnectionDropped),
        (requests.exceptions.ChunkedEncodingError("cut"), ConnectionDropped),
        (requests.exceptions.SSLError("tls"), ConnectError),
    ],
)
def test_transport_errors(
    client: YouforceClient, transport: FakeTransport, raised: Exception, cls: type
) -> None:
    transport.api.append(raised)
    with pytest.raises(cls) as info:
        client.ticket_status(TENANT, "T-1")
    assert info.value.retryable
    assert info.value.status_code is None
    assert info.value.url == f"{API_URL}/learning/v1.0/employees/documents/T-1/status"


def test_ticket_status_numbers_and_bad_shapes(
    client: YouforceClient, transport: FakeTransport
) -> None:
    transport.reply(200, {"status": 3, "errorMessages": ["Person not found"]})
    status = client.ticket_status(TENANT, "T-1")
    assert (status.state, status.name, status.error_messages) == (
        TicketState.FAILED,
        "Rejected",
        ("Person not found",),
    )
    transport.reply(200, {"errorMessages": []})
    with pytest.raises(ResponseFormatError, match="no 'status'"):
        client.ticket_status(TENANT, "T-1")
    transport.reply(200, text="<html>")
    with pytest.raises(ResponseFormatError, match="not JSON") as info:
        client.ticket_status(TENANT, "T-1")
    assert info.value.body == "<html>"


def test_custom_status_map(session: requests.Session, transport: FakeTransport) -> None:
    c = YouforceClient(
        api_url=API_URL,
        token_url="https://login.test/connect/token",
        client_id="c",
        client_secret=SECRET,
        session=session,
        status_number_map={0: "Complete"},
    )
    transport.reply(200, {"status": 0})
    assert c.ticket_status(TENANT, "T-1").state is TicketState.COMPLETE


def test_receipt_without_ticket_is_format_error(
    client: YouforceClient, transport: FakeTransport, pdf: Path
) -> None:
    transport.reply(200, {"status": "InProgress"})
    with pytest.raises(ResponseFormatError, match="ticketId"):
        client.upload_document(TENANT, "191166", "diploma", pdf, description="d")


def test_paging_follows_next_link_exactly(client: YouforceClient, transport: FakeTransport) -> None:
    link = f"{API_URL}/learning/v1.0/persons?take=2&skipToken=Zm9v%3D&changedAfter=x"
    transport.reply(200, {"value": [{"id": "1"}, {"id": "2"}], "nextLink": link})
    transport.reply(200, {"values": [{"id": "907624", "isDeleted": True, "shortName": "9"}]})
    after = datetime(2024, 1, 1, tzinfo=UTC)
    records = list(client.persons(TENANT, changed_after=after, take=2))
    assert [(r.id, r.is_deleted) for r in records] == [("1", False), ("2", False), ("907624", True)]
    first, second = transport.api_calls
    assert first.url == (
        f"{API_URL}/learning/v1.0/persons?changedAfter=2024-01-01T00%3A00%3A00.000Z&take=2"
    )
    assert second.url == link
    assert second.headers["Authorization"] == "Bearer tok-1"
    assert second.headers["X-Raet-Tenant-Id"] == TENANT


def test_reader_arguments_checked_before_iteration(
    client: YouforceClient, transport: FakeTransport
) -> None:
    with pytest.raises(InvalidRequestError, match="take"):
        client.persons(TENANT, take=1001)
    with pytest.raises(InvalidRequestError, match="naive"):
        client.job_profiles(TENANT, changed_until=datetime(2024, 1, 1))
    with pytest.raises(InvalidRequestError, match="shortName"):
        client.organization_units(TENANT, short_name="")
    assert transport.calls == []


def test_next_link_to_another_host_is_refused(
    client: YouforceClient, transport: FakeTransport
) -> None:
    transport.reply(200, {"value": [], "nextLink": "https://evil.test/steal"})
    with pytest.raises(ResponseFormatError, match="leaves the API host"):
        list(client.persons(TENANT))
    assert len(transport.api_calls) == 1


def test_next_link_loop_is_refused(client: YouforceClient, transport: FakeTransport) -> None:
    link = f"{API_URL}/learning/v1.0/jobProfiles?page=2"
    transport.reply(200, {"value": [], "nextLink": link})
    transport.reply(200, {"value": [], "nextLink": link})
    with pytest.raises(ResponseFormatError, match="loops"):
        list(client.job_profiles(TENANT))


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (
            lambda c: c.employments(TENANT, person_code="191166", person_id="p1"),
            "/learning/v1.0/employments?personCode=191166&personId=p1",
        ),
        (
            lambda c: c.organization_units(TENANT, short_name="HR"),
            "/learning/v1.0/organizationUnits?shortName=HR",
        ),
        (
            lambda c: c.role_assignments(TENANT, person_id="p1", short_name="MGR"),
            "/learning/v1.0/roleAssignments?personId=p1&shortName=MGR",
        ),
        (lambda c: c.job_profiles(TENANT, take=1000), "/learning/v1.0/jobProfiles?take=1000"),
    ],
)
def test_reader_paths_and_filters(
    client: YouforceClient,
    transport: FakeTransport,
    call,
    path: str,  # type: ignore[no-untyped-def]
) -> None:
    transport.reply(200, {"value": [{"id": 5}]})
    assert [r.id for r in call(client)] == ["5"]
    assert transport.api_calls[0].url == API_URL + path


def test_cost_allocation(client: YouforceClient, transport: FakeTransport) -> None:
    transport.reply(200, {"id": "CA1", "name": "x"})
    transport.reply(200, {"value": [{"id": "CA2"}]})
    assert client.cost_allocation(TENANT, "CA1").get("name") == "x"
    assert client.cost_allocation(TENANT, "CA2").id == "CA2"
    assert transport.api_calls[0].url == f"{API_URL}/learning/v1.0/costAllocations/CA1"
    with pytest.raises(InvalidRequestError):
        client.cost_allocation(TENANT, "../CA1")


def test_logs_never_hold_token_or_secret(
    client: YouforceClient,
    transport: FakeTransport,
    pdf: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    transport.reply(401, {})
    transport.reply(200, RECEIPT, headers={"X-Correlation-Id": "corr-7"})
    client.upload_document(TENANT, "191166", "diploma", pdf, description="d")
    text = caplog.text
    assert "POST /learning/v1.1/employees/191166/documents/diploma -> 200" in text
    assert "corr-7" in text
    for secret in ("tok-1", "tok-2", SECRET, "Bearer"):
        assert secret not in text
    assert {r.name for r in caplog.records} == {"api_client"}


def test_client_repr_and_errors_hold_no_secret(
    client: YouforceClient, transport: FakeTransport
) -> None:
    transport.reply(403, {"message": "no scope"})
    with pytest.raises(Exception) as info:  # noqa: PT011
        client.ticket_status(TENANT, "T-1")
    for text in (repr(client), str(info.value), repr(info.value), info.value.body or ""):  # type: ignore[attr-defined]
        assert SECRET not in text
        assert "tok-1" not in text


def test_own_session_has_no_urllib3_retries() -> None:
    c = YouforceClient(
        api_url=API_URL, token_url="https://login.test/t", client_id="c", client_secret=SECRET
    )
    adapter = c._session.get_adapter("https://api.test")
    assert adapter.max_retries.total == 0  # type: ignore[attr-defined]
    c.close()
