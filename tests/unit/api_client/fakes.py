"""An in-test transport for the client: a requests adapter that answers from a script."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

API_URL = "https://api.test"
TOKEN_URL = "https://login.test/connect/token"
CLIENT_ID = "client-1"
SECRET = "s3cr3t-value"
TENANT = "4028868"


def make_response(
    request: requests.PreparedRequest,
    status: int = 200,
    body: Any = None,
    *,
    text: str | None = None,
    headers: dict[str, str] | None = None,
    reason: str = "",
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    if text is None:
        text = "" if body is None else json.dumps(body)
    response._content = text.encode("utf-8")
    response.headers = CaseInsensitiveDict(headers or {})
    response.url = request.url or ""
    response.request = request
    response.reason = reason
    response.encoding = "utf-8"
    return response


@dataclass
class Call:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: Any


Handler = Callable[[requests.PreparedRequest], requests.Response]


@dataclass
class FakeTransport(BaseAdapter):
    """Token requests get fresh tokens (or scripted answers); API requests pop `api`."""

    calls: list[Call] = field(default_factory=list)
    api: list[Handler | BaseException] = field(default_factory=list)
    token_answers: list[Handler | BaseException] = field(default_factory=list)
    issued: int = 0
    read_size: int = 8192

    def __post_init__(self) -> None:
        super().__init__()

    def _body(self, request: requests.PreparedRequest) -> bytes:
        body = request.body
        if body is None:
            return b""
        if isinstance(body, bytes):
            return body
        if isinstance(body, str):
            return body.encode()
        chunks = []
        while chunk := body.read(self.read_size):  # type: ignore[union-attr]
            chunks.append(chunk)
        return b"".join(chunks)

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        call = Call(
            request.method or "",
            request.url or "",
            dict(request.headers),
            self._body(request),
            timeout,
        )
        self.calls.append(call)
        if call.url.startswith(TOKEN_URL):
            if self.token_answers:
                return self._run(self.token_answers.pop(0), request)
            self.issued += 1
            return make_response(
                request,
                200,
                {
                    "access_token": f"tok-{self.issued}",
                    "expires_in": 3600,
                    "token_type": "Bearer",
                    "scope": "Upload_documents",
                },
            )
        if not self.api:
            raise AssertionError(f"unexpected API call {call.method} {call.url}")
        return self._run(self.api.pop(0), request)

    @staticmethod
    def _run(
        handler: Handler | BaseException, request: requests.PreparedRequest
    ) -> requests.Response:
        if isinstance(handler, BaseException):
            raise handler
        return handler(request)

    def close(self) -> None:
        pass

    def reply(self, status: int = 200, body: Any = None, **kwargs: Any) -> None:
        self.api.append(lambda request: make_response(request, status, body, **kwargs))

    @property
    def token_calls(self) -> list[Call]:
        return [c for c in self.calls if c.url.startswith(TOKEN_URL)]

    @property
    def api_calls(self) -> list[Call]:
        return [c for c in self.calls if not c.url.startswith(TOKEN_URL)]


@dataclass
class RecordingSlot:
    kind: str
    tenant: str
    recorded: list[tuple[int | None, float | None]] = field(default_factory=list)
    limits: list[str | None] = field(default_factory=list)

    def record_response(
        self, status_code: int | None, retry_after: float | None, limit: str | None = None
    ) -> None:
        self.recorded.append((status_code, retry_after))
        self.limits.append(limit)


@dataclass
class RecordingGovernor:
    slots: list[RecordingSlot] = field(default_factory=list)
    open_slots: int = 0
    max_open: int = 0

    def slot(self, kind: str, tenant_id: str) -> Any:
        import contextlib

        @contextlib.contextmanager
        def cm() -> Iterator[RecordingSlot]:
            slot = RecordingSlot(kind, tenant_id)
            self.slots.append(slot)
            self.open_slots += 1
            self.max_open = max(self.max_open, self.open_slots)
            try:
                yield slot
            finally:
                self.open_slots -= 1

        return cm()
