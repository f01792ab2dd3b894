"""Transport failures never carry the bearer token or the client secret, however formatted.

A requests exception holds `.request`, the prepared request with its Authorization header
and (for the token call) the form body with the client secret. Chained onto our exception,
a traceback, a `repr` or an error tracker could show them. Each failure is provoked for
real, over loopback: nothing listening, a server that never answers, and one that hangs
up; then the whole exception, everything reachable from it, and the log are searched.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import requests

from api_client import (
    AccessToken,
    ConnectError,
    ConnectionDropped,
    InMemoryTokenCache,
    ReadTimeout,
    Timeouts,
    TransportError,
    YouforceClient,
)
from api_client.tokens import token_cache_key
from api_client.transport import _transport_error, secrets_in

TENANT = "4028868"
TOKEN = "tok-KNOWN-8f3a9c1e5b7d"
SECRET = "s3cr3t-KNOWN-42f0c9"
TICKET = "7ca486f6-c730-4d50-a2ec-31a3a1373366"


@dataclass
class LoopbackServer:
    """A bare TCP server on 127.0.0.1 that reads a request and then hangs up or stays silent."""

    mode: str
    listener: socket.socket = field(init=False)
    stopping: threading.Event = field(default_factory=threading.Event)
    connections: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.05)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _address = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(connection)
            connection.settimeout(5)
            with contextlib.suppress(OSError):
                connection.recv(65536)
            if self.mode == "drop":
                connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def servers() -> Iterator[dict[str, LoopbackServer]]:
    started = {mode: LoopbackServer(mode) for mode in ("drop", "silent")}
    yield started
    for server in started.values():
        server.stop()


def closed_port_url() -> str:
    """A loopback URL where nothing listens (the port was just released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_client(api_url: str, token_url: str, *, token_cached: bool) -> YouforceClient:
    cache = InMemoryTokenCache()
    if token_cached:
        token = AccessToken(TOKEN, "Bearer", "", datetime.now(UTC) + timedelta(hours=1))
        cache.get_or_fetch(token_cache_key(token_url, "client-1", TENANT), lambda: token, 0)
    return YouforceClient(
        api_url=api_url,
        token_url=token_url,
        client_id="client-1",
        client_secret=SECRET,
        token_cache=cache,
        timeouts=Timeouts(connect=2, read=0.3),
    )


def chain_of(error: BaseException) -> list[BaseException]:
    links: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        link = pending.pop()
        if link is None or any(link is seen for seen in links):
            continue
        links.append(link)
        pending += [link.__cause__, link.__context__]
    return links


def reachable_text(root: object, depth: int = 8) -> str:
    """Every string reachable from `root` through attributes, args and containers.

    The traceback's frames are left out: they are the caller's own frames, whose locals
    hold the token by necessity; what matters is what the exception itself carries.
    """
    texts: list[str] = []
    seen: set[int] = set()

    def visit(item: object, left: int) -> None:
        if left < 0 or id(item) in seen:
            return
        seen.add(id(item))
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, bytes | bytearray):
            texts.append(bytes(item).decode("latin-1"))
        elif isinstance(item, dict):
            for key, value in item.items():
                visit(key, left - 1)
                visit(value, left - 1)
        elif isinstance(item, list | tuple | set | frozenset):
            for value in item:
                visit(value, left - 1)
        else:
            if isinstance(item, BaseException):
                visit(item.args, left - 1)
                visit(item.__cause__, left - 1)
                visit(item.__context__, left - 1)
            attributes = getattr(item, "__dict__", None)
            if isinstance(attributes, dict):
                visit({k: v for k, v in attributes.items() if k != "__traceback__"}, left - 1)

    visit(root, depth)
    return "\n".join(texts)


def everything_shown(error: BaseException) -> str:
    links = chain_of(error)
    shown = ["".join(traceback.format_exception(error))]
    for link in links:
        shown += [repr(link), str(link), repr(vars(link)), reachable_text(link)]
    return "\n".join(shown)


def provoke(client: YouforceClient) -> TransportError:
    with client, pytest.raises(TransportError) as caught:
        client.ticket_status(TENANT, TICKET)
    return caught.value


def scenarios(servers: dict[str, LoopbackServer]) -> dict[str, tuple[str, type[TransportError]]]:
    return {
        "connect error": (closed_port_url(), ConnectError),
        "read timeout": (servers["silent"].url, ReadTimeout),
        "dropped connection": (servers["drop"].url, ConnectionDropped),
    }


@pytest.mark.parametrize("case", ["connect error", "read timeout", "dropped connection"])
@pytest.mark.parametrize("at", ["api call", "token request"])
def test_no_failure_shows_the_token_or_the_secret(
    servers: dict[str, LoopbackServer], caplog: pytest.LogCaptureFixture, case: str, at: str
) -> None:
    url, expected = scenarios(servers)[case]
    caplog.set_level(logging.DEBUG)
    if at == "api call":
        client = make_client(url, f"{url}/connect/token", token_cached=True)
    else:
        client = make_client("http://127.0.0.1:9", f"{url}/connect/token", token_cached=False)
    error = provoke(client)
    assert type(error) is expected
    assert error.cause is not None
    assert error.cause.startswith(("requests.exceptions.", "urllib3.exceptions."))
    assert chain_of(error) == [error], "the requests exception must not be chained"
    for value in vars(error).values():
        assert not isinstance(value, requests.PreparedRequest | requests.RequestException)
    shown = everything_shown(error) + caplog.text
    assert TOKEN not in shown
    assert SECRET not in shown


def test_a_secret_in_the_exception_text_is_scrubbed() -> None:
    leaked = requests.ConnectionError(f"proxy said: Authorization: Bearer {TOKEN}; {SECRET}")
    error = _transport_error(
        leaked, "GET", "https://api.test/x", (f"Bearer {TOKEN}", TOKEN, SECRET)
    )
    shown = everything_shown(error)
    assert TOKEN not in shown
    assert SECRET not in shown
    assert "<redacted>" in str(error)
    assert error.cause is not None
    assert error.cause.startswith("requests.exceptions.ConnectionError: proxy said")


def test_secrets_are_taken_from_credential_headers_and_secret_form_fields() -> None:
    found = secrets_in(
        {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
        {"client_id": "client-1", "client_secret": SECRET, "tenant_id": TENANT},
    )
    assert set(found) == {f"Bearer {TOKEN}", TOKEN, SECRET}
