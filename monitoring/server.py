"""The small HTTP server of `yfdocs metrics`: `GET /metrics`, optionally behind a token.

It binds 127.0.0.1 by default. With a token (`YFDOCS_METRICS_TOKEN`) every request must
carry `Authorization: Bearer <token>` (Prometheus: `authorization: {credentials_file: ...}`
in the scrape config), else it gets 401; without one, `yfdocs metrics` refuses any address
but loopback. Every scrape queries the database, so requests are served one thread each.
"""

from __future__ import annotations

import ipaddress
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry

from monitoring.exposition import bearer_token_matches, render

__all__ = ["MetricsServer", "is_loopback"]

log = logging.getLogger(__name__)


def is_loopback(address: str) -> bool:
    """Whether `address` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class MetricsServer(ThreadingHTTPServer):
    """Serves one registry's exposition at `/metrics`."""

    daemon_threads = True

    def __init__(
        self, address: str, port: int, registry: CollectorRegistry, token: str | None
    ) -> None:
        self.registry = registry
        self.token = token
        super().__init__((address, port), _MetricsHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/metrics"


class _MetricsHandler(BaseHTTPRequestHandler):
    server: MetricsServer
    server_version = "yfdocs-metrics"
    sys_version = ""

    def do_GET(self) -> None:
        if not self._authorised():
            self._answer(401, b"a bearer token is required\n", "text/plain; charset=utf-8")
            return
        if self.path.split("?", 1)[0] != "/metrics":
            self._answer(404, b"see /metrics\n", "text/plain; charset=utf-8")
            return
        body, content_type = render(self.server.registry, self.headers.get("Accept"))
        self._answer(200, body, content_type)

    def _authorised(self) -> bool:
        return bearer_token_matches(self.headers.get("Authorization"), self.server.token)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="yfdocs metrics"')
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)
