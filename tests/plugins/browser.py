"""A real headless Chromium, driven over the DevTools protocol, for pages that need JavaScript.

Flower fills its tables by XHR after the page loads, so fetching the HTML with `requests`
would test an empty shell. Chromium is started with `--remote-debugging-port=0` (it writes
the port it took into `DevToolsActivePort` in its profile, so there is no race for a free
port) and driven through tornado's websocket client, which Flower already brings: no
browser-automation package is needed. Basic auth is sent as an extra header on every
request of the page, XHRs included. Every wait is bounded, and the whole process group is
killed on exit.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import requests
from tornado.websocket import WebSocketClientConnection, websocket_connect

__all__ = ["BrowserError", "HeadlessChromium", "PageLoad", "chromium_path"]

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--window-size=1440,1000",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


class BrowserError(Exception):
    """Chromium did not start, did not answer in time, or reported a protocol error."""


def chromium_path() -> str:
    """The Chromium binary: YFDOCS_TEST_CHROMIUM or /usr/bin/chromium; missing fails in CI."""
    candidate = os.environ.get("YFDOCS_TEST_CHROMIUM") or "/usr/bin/chromium"
    found = shutil.which(candidate)
    if found:
        return found
    message = f"Chromium not found at {candidate} (scripts/test-services.sh installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class PageLoad:
    """What one navigation produced: the main document's HTTP status, and Chromium's error.

    A 401 has a status and an error: headless Chromium cancels the credentials prompt
    (`net::ERR_INVALID_AUTH_CREDENTIALS`) and shows its own error page instead.
    """

    url: str
    status: int | None
    error: str | None = None


class HeadlessChromium:
    """A headless Chromium process with one page, driven by DevTools protocol commands."""

    def __init__(self, binary: str, *, timeout: float = 15.0) -> None:
        self.binary = binary
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._profile = Path(tempfile.mkdtemp(prefix="yfdocs-chromium-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._loop = asyncio.new_event_loop()
        self._connection: WebSocketClientConnection | None = None
        self._next_id = 0
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}

    def __enter__(self) -> HeadlessChromium:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self) -> None:
        argv = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "about:blank"]
        with (self._profile / "chromium.log").open("wb") as log_file:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                start_new_session=True,
            )
        port = self._wait_for_devtools_port()
        page = self._first_page(port)

        async def connect() -> WebSocketClientConnection:
            return await websocket_connect(
                page["webSocketDebuggerUrl"],
                on_message_callback=self._on_message,
                max_message_size=64 * 1024 * 1024,
            )

        self._connection = self._run(connect())
        self.command("Page.enable")
        self.command("Network.enable")
        self.command("Runtime.enable")

    def _wait_for_devtools_port(self) -> int:
        marker = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise BrowserError(f"Chromium exited with {self._process.returncode}: {self.log()}")
            if marker.exists():
                lines = marker.read_text().splitlines()
                if lines and lines[0].strip().isdigit():
                    return int(lines[0])
            time.sleep(0.05)
        raise BrowserError(f"Chromium opened no DevTools port in {self.timeout}s: {self.log()}")

    def _first_page(self, port: int) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return dict(pages[0])
            time.sleep(0.05)
        raise BrowserError("Chromium opened no page")

    def log(self) -> str:
        """The tail of Chromium's stderr, for failure messages."""
        path = self._profile / "chromium.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-20:])

    def _run(self, awaitable: Any, timeout: float | None = None) -> Any:
        async def bounded() -> Any:
            return await asyncio.wait_for(awaitable, timeout or self.timeout)

        try:
            return self._loop.run_until_complete(bounded())
        except TimeoutError:
            raise BrowserError(f"no answer from Chromium in {timeout or self.timeout}s") from None

    def _on_message(self, raw: str | bytes | None) -> None:
        """Every message from Chromium: answers resolve their command, events are kept."""
        if raw is None:
            for pending in self._answers.values():
                if not pending.done():
                    pending.set_exception(BrowserError("Chromium closed the connection"))
            return
        message = json.loads(raw)
        command_id = message.get("id")
        future = self._answers.pop(command_id) if command_id in self._answers else None
        if future is not None and not future.done():
            future.set_result(message)
        elif "method" in message:
            self.events.append(message)

    def command(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one protocol command and return its result; events seen meanwhile are kept."""
        connection = self._connection
        if connection is None:
            raise BrowserError("not connected")
        self._next_id += 1
        command_id = self._next_id

        async def exchange() -> dict[str, Any]:
            answer = self._loop.create_future()
            self._answers[command_id] = answer
            try:
                await connection.write_message(
                    json.dumps({"id": command_id, "method": method, "params": params})
                )
                message: dict[str, Any] = await answer
            finally:
                self._answers.pop(command_id, None)
            if "error" in message:
                raise BrowserError(f"{method}: {message['error']}")
            return dict(message.get("result", {}))

        result: dict[str, Any] = self._run(exchange())
        return result

    def use_basic_auth(self, user: str, password: str) -> None:
        """Send these credentials with every request of the page, XHRs included."""
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.command("Network.setExtraHTTPHeaders", headers={"Authorization": f"Basic {token}"})

    def type_into(self, selector: str, text: str) -> None:
        """Empty the field, focus it and type `text` as a user would (input events fire)."""
        focused = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return false; e.value = ''; e.focus(); return true; })()"
        )
        if not focused:
            raise BrowserError(f"no element {selector}")
        self.command("Input.insertText", text=text)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable values only)."""
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} raised {result['exceptionDetails']}")
        return result["result"].get("value")

    def navigate(self, url: str) -> PageLoad:
        """Open a URL and wait until its load event; returns the main document's status."""
        self.events.clear()
        answer = self.command("Page.navigate", url=url)
        loader_id = answer.get("loaderId")
        self.wait_for(
            lambda: any(event["method"] == "Page.loadEventFired" for event in self.events),
            what=f"{url} to load",
        )
        statuses = [
            int(event["params"]["response"]["status"])
            for event in self.events
            if event["method"] == "Network.responseReceived"
            and event["params"].get("type") == "Document"
            and event["params"].get("loaderId") == loader_id
        ]
        error = answer.get("errorText") or None
        if error and not statuses:
            raise BrowserError(f"navigation to {url} failed: {error}")
        return PageLoad(url, statuses[-1] if statuses else None, error)

    def wait_for(self, predicate: Any, *, what: str, timeout: float | None = None) -> None:
        """Poll `predicate` (which may send commands) until it is true, or fail with the page."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            if predicate():
                return
            self._drain(0.2)
        text = self.evaluate("document.body ? document.body.innerText : ''")
        raise BrowserError(f"timed out waiting for {what}; the page shows:\n{str(text)[:3000]}")

    def _drain(self, seconds: float) -> None:
        """Let Chromium's events arrive for `seconds`."""
        self._run(asyncio.sleep(seconds), timeout=seconds + 5)

    def screenshot(self, path: Path) -> Path:
        """Save what the page shows now as a PNG at `path`."""
        shot = self.command("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def page_source(self) -> str:
        """The live DOM, after scripts ran (not the HTML the server sent)."""
        return str(self.evaluate("document.documentElement.outerHTML"))

    def close(self) -> None:
        """Close the connection, kill Chromium's whole process group, delete the profile."""
        if self._connection is not None:
            connection, self._connection = self._connection, None

            async def close_connection() -> None:
                # Inside our loop: tornado's close asks for the current IOLoop, and outside
                # a running loop that makes and sets a new asyncio loop for the thread,
                # which nothing closes (its sockets warn when collected, in a later test).
                connection.close()
                await asyncio.sleep(0.05)

            self._loop.run_until_complete(close_connection())
        if self._process is not None:
            if self._process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)
            self._process = None
        if not self._loop.is_closed():
            self._loop.close()
        shutil.rmtree(self._profile, ignore_errors=True)
