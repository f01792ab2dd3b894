"""An HTTPS server on 127.0.0.1 with a test CA (trustme), serving certificates and the
ways a certificate URL can go wrong: redirects, sizes, slowness, server errors.

`certificate_server` starts one per test and stops it; its CA bundle goes to the fetcher
(`YFDOCS_INTAKE_FETCH_CA_BUNDLE`). Routes are a dict the test may add to.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.pdf_samples import make_pdf

__all__ = ["CertificateServer", "Reply"]


@dataclass
class Reply:
    """What a route answers: a status, headers, a body, and how to send it."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False
    delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        route = self.server.routes.get(self.path.split("?", 1)[0])
        reply = route(self) if callable(route) else route
        if reply is None:
            reply = Reply(status=404, body=b"not found")
        if reply.delay:
            time.sleep(reply.delay)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(reply.body), 65536):
                piece = reply.body[start : start + 65536]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.wfile.write(reply.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Reply | Callable[[BaseHTTPRequestHandler], Reply | None]]
    requests: list[tuple[str, str]]


class CertificateServer:
    """HTTPS on 127.0.0.1 with a certificate for `localhost` and 127.0.0.1."""

    def __init__(self, ca: trustme.CA, ca_bundle: Path) -> None:
        self.ca_bundle = ca_bundle
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.routes = {}
        self._httpd.requests = []
        self.pdf = make_pdf(text="certificate from the LMS")
        self.routes["/cert.pdf"] = Reply(body=self.pdf, headers={"Content-Type": "application/pdf"})
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def routes(self) -> dict[str, Reply | Callable[[BaseHTTPRequestHandler], Reply | None]]:
        return self._httpd.routes

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self._httpd.requests

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    def start(self) -> CertificateServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return ca, bundle


@pytest.fixture
def certificate_server(test_ca: tuple[trustme.CA, Path]) -> Iterator[CertificateServer]:
    server = CertificateServer(*test_ca).start()
    yield server
    server.stop()
