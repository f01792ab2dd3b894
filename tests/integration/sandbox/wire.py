"""Plain-HTTP helpers for the sandbox tests, written here on purpose (not the api_client)."""

from __future__ import annotations

import http.client
import json
import uuid
from dataclasses import dataclass
from typing import Any

import requests

from sandbox import SandboxServer
from tests.unit.sandbox.pdf_files import classic_pdf

TENANT = "4028868"
OTHER_TENANT = "4028869"
PERSON = "191166"
TIMEOUT = 10
UPLOAD_FIELDS = (
    "ticketId",
    "description",
    "size",
    "tenantId",
    "creationDateTime",
    "status",
    "errorMessages",
)


def minimal_pdf(size: int | None = None) -> bytes:
    """A small one-page PDF that passes the structural check; exactly `size` bytes if asked."""
    return classic_pdf(size)


PDF = minimal_pdf()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def token_form(**overrides: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        "grant_type": "client_credentials",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "tenant_id": TENANT,
        **overrides,
    }
    return {key: value for key, value in form.items() if value is not None}


def post_token(
    server: SandboxServer, form: dict[str, str], headers: dict[str, str]
) -> requests.Response:
    return requests.post(server.token_url, data=form, headers=headers, timeout=TIMEOUT)


def request_token(
    server: SandboxServer, headers: dict[str, str] | None = None, **form: str | None
) -> requests.Response:
    """A token request with the documented form; keyword overrides (None drops a field)."""
    sent_headers = {"Cache-Control": "no-cache"} if headers is None else headers
    return post_token(server, token_form(**form), sent_headers)


def get_token(server: SandboxServer, tenant: str = TENANT, **form: str | None) -> str:
    response = post_token(
        server, token_form(tenant_id=tenant, **form), {"Cache-Control": "no-cache"}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def api_headers(token: str | None, tenant: str | None = TENANT) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if tenant is not None:
        headers["X-Raet-Tenant-Id"] = tenant
    return headers


def upload_v11(
    server: SandboxServer,
    token: str | None,
    *,
    person: str = PERSON,
    doc_type: str = "diploma",
    tenant: str | None = TENANT,
    description: str = "Diploma Python",
    valid_from: str = "2024-03-01",
    filename: str = "diploma.pdf",
    data: bytes = PDF,
    file_type: str = "application/pdf",
    files: list[tuple[str, Any]] | None = None,
) -> requests.Response:
    parts = files or [
        ("Description", (None, description)),
        ("ValidFrom", (None, valid_from)),
        ("file", (filename, data, file_type)),
    ]
    return requests.post(
        f"{server.url}/learning/v1.1/employees/{person}/documents/{doc_type}",
        headers=api_headers(token, tenant),
        files=parts,
        timeout=TIMEOUT,
    )


def related_body(
    metadata: dict[str, Any], data: bytes = PDF, type_parameter: str | None = '"application/json"'
) -> tuple[bytes, str]:
    """A v1.0 body and its Content-Type; `type_parameter` None leaves `type=` out."""
    boundary = f"b-{uuid.uuid4().hex}"
    body = (
        f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode()
        + json.dumps(metadata).encode()
        + f"\r\n--{boundary}\r\nContent-Type: application/pdf\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    type_part = "" if type_parameter is None else f"; type={type_parameter}"
    return body, f"multipart/related{type_part}; boundary={boundary}"


def upload_v10(
    server: SandboxServer,
    token: str,
    metadata: dict[str, Any],
    *,
    doc_type: str = "certificate",
    type_parameter: str | None = '"application/json"',
) -> requests.Response:
    body, content_type = related_body(metadata, type_parameter=type_parameter)
    return requests.post(
        f"{server.url}/learning/v1.0/employees/{PERSON}/documents/{doc_type}",
        headers={**api_headers(token), "Content-Type": content_type},
        data=body,
        timeout=TIMEOUT,
    )


def status(
    server: SandboxServer, token: str, ticket_id: str, tenant: str = TENANT
) -> requests.Response:
    return requests.get(
        f"{server.url}/learning/v1.0/employees/documents/{ticket_id}/status",
        headers=api_headers(token, tenant),
        timeout=TIMEOUT,
    )


def api_get(server: SandboxServer, token: str, path: str, **params: str) -> requests.Response:
    return requests.get(
        f"{server.url}/learning/v1.0/{path}",
        headers=api_headers(token),
        params=params,
        timeout=TIMEOUT,
    )


def admin(server: SandboxServer, name: str, payload: dict[str, Any] | None = None) -> Any:
    if payload is None and name not in ("reset", "revoke-tokens"):
        response = requests.get(f"{server.url}/_sandbox/{name}", timeout=TIMEOUT)
    else:
        response = requests.post(
            f"{server.url}/_sandbox/{name}", json=payload or {}, timeout=TIMEOUT
        )
    assert response.status_code == 200, response.text
    return response.json()


@dataclass(frozen=True)
class RawAnswer:
    """What came back to a request sent byte for byte."""

    status_code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    server: SandboxServer,
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes = b"",
) -> RawAnswer:
    """A request whose path goes out exactly as written.

    requests normalises a URL before sending it (`%31` becomes `1`), so it cannot show how
    the server treats an encoded path segment; http.client sends the path untouched.
    """
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        connection.request(method, raw_path, body=body, headers=headers)
        response = connection.getresponse()
        return RawAnswer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def advance(server: SandboxServer, api_seconds: float) -> float:
    """Move a sandbox's API time forward; returns the new API time in epoch seconds."""
    seconds: float = admin(server, "clock/advance", {"seconds": api_seconds})["api_seconds"]
    return seconds


def hold(server: SandboxServer, held: bool) -> dict[str, Any]:
    """Hold admitted API calls in flight, or let them all go on."""
    answer: dict[str, Any] = admin(server, "hold", {"held": held})
    return answer


def assert_youforce_error(
    response: requests.Response, status: int, error_code: str | None = None
) -> dict[str, Any]:
    """The status, a correlationId in body and header, and the body's errorCode."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    inner: dict[str, Any] = body.get("error", body)
    assert inner["correlationId"] == response.headers["X-Correlation-Id"]
    uuid.UUID(inner["correlationId"])
    if error_code is not None:
        assert inner.get("errorCode") == error_code
    return body
