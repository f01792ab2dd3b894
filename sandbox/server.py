"""The socket layer: a loopback `ThreadingHTTPServer` in a background thread.

The handler reads exactly what came over the wire (HTTP/1.1 keep-alive, Content-Length or
chunked bodies), applies connection-level faults (a dropped connection is a socket closed
without an answer), and hands everything else to `SandboxService`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from sandbox.config import SandboxConfig
from sandbox.faults import FaultPlan
from sandbox.service import ADMIN_PREFIX, TOKEN_PATH, ApiRequest, ApiResponse, SandboxService

__all__ = ["SandboxServer"]

logger = logging.getLogger(__name__)

_NO_FAULT = FaultPlan()


class _BodyTooLarge(Exception):
    """The request body is over `max_request_bytes`."""


class _Dropped(Exception):
    """A fault closed the connection without an answer."""


class _LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    service: SandboxService


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "YouforceSandbox/1.0"
    sys_version = ""
    server: _LoopbackHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _handle(self) -> None:
        service = self.server.service
        arrived_api = service.clock.now()
        split = urlsplit(self.path)
        path, query = split.path, split.query
        if path.startswith(ADMIN_PREFIX) or path == ADMIN_PREFIX.rstrip("/"):
            self._handle_admin(service, path, query)
            return
        headers = list(self.headers.items())
        entry = service.open_entry(self.command, path, query, headers, arrived_api)
        is_token = path == TOKEN_PATH
        faults = service.config.faults
        plan = (
            service.faults.plan(faults)
            if not is_token or faults.include_token_endpoint
            else _NO_FAULT
        )
        if not is_token:
            service.stats.enter()
        try:
            self._serve(service, path, query, headers, entry, arrived_api, plan, is_token)
        except _Dropped:
            service.stats.count("faults", "dropped")
            service.finish_entry(entry, None, fault=f"dropped_{plan.drop_phase}")
            self._drop()
        except _BodyTooLarge:
            response = ApiResponse.json(413, {"message": "Request body too large."})
            service.finish_entry(entry, response)
            self.close_connection = True
            self._write(response)
        finally:
            if not is_token:
                service.stats.leave()

    def _serve(
        self,
        service: SandboxService,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        entry: dict[str, Any],
        arrived_api: float,
        plan: FaultPlan,
        is_token: bool,
    ) -> None:
        if plan.drop_phase == "before_body":
            raise _Dropped
        body = self._read_body(service.config.max_request_bytes)
        request = ApiRequest(self.command, path, query, headers, body, arrived_api, entry)
        service.describe_body(request)
        if plan.drop_phase == "after_body":
            raise _Dropped
        if is_token:
            if plan.latency_s > 0:
                time.sleep(plan.latency_s)
            response = service.handle_token(request)
        else:
            response = service.handle_api(request, plan)
        service.finish_entry(entry, response)
        self._write(response)

    def _handle_admin(self, service: SandboxService, path: str, query: str) -> None:
        try:
            body = self._read_body(service.config.max_request_bytes)
        except _BodyTooLarge:
            self.close_connection = True
            self._write(ApiResponse.json(413, {"message": "Request body too large."}))
            return
        self._write(service.admin(self.command, path, query, body))

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        length_header = self.headers.get("Content-Length")
        if not length_header:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if length < 0 or length > limit:
            raise _BodyTooLarge
        return self.rfile.read(length)

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise _BodyTooLarge from exc
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > limit:
                raise _BodyTooLarge
            chunks.append(self.rfile.read(size))
            self.rfile.readline(16)

    def _write(self, response: ApiResponse) -> None:
        """Send the answer; a client that already hung up (timeout, killed) is no error here."""
        try:
            self._send(response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, response: ApiResponse) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(response.body)
        self.wfile.flush()

    def _drop(self) -> None:
        """Close the connection with no answer at all, as a broken proxy would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class SandboxServer:
    """A running sandbox: `with SandboxServer(cfg) as server: server.url ...`."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.service = SandboxService(self.config)
        self._httpd: _LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the API (and of the token endpoint), e.g. http://127.0.0.1:8765."""
        if self._httpd is None:
            raise RuntimeError("the sandbox is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def start(self) -> SandboxServer:
        if self._httpd is not None:
            return self
        host = "127.0.0.1" if self.config.host == "localhost" else self.config.host
        httpd = _LoopbackHTTPServer((host, self.config.port), _Handler)
        httpd.service = self.service
        self._httpd = httpd
        self.service.base_url = self.url
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("Youforce sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.service.hold_calls(False)
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Block in the calling thread until `stop` is called from elsewhere."""
        self.start()
        if self._thread is not None:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)

    def reset(self) -> None:
        self.service.reset()

    def advance_clock(self, api_seconds: float) -> float:
        """Same as `POST /_sandbox/clock/advance`; returns the new API time."""
        return self.service.clock.advance(api_seconds)

    def revoke_tokens(self) -> int:
        return self.service.tokens.revoke_all()

    def patch_config(self, patch: dict[str, Any]) -> None:
        """Same as `POST /_sandbox/config`."""
        self.service.patch_config(patch)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
