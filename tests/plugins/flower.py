"""`yfdocs flower` as a child process of a test, with a password of its own."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.plugins.worker_fixtures import ServiceUnderTest

__all__ = ["FLOWER_USER", "FlowerProcess", "free_port", "running_flower"]

FLOWER_USER = "admin"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class FlowerProcess:
    """`yfdocs flower` as a child process, with the password it was given."""

    process: subprocess.Popen[bytes]
    url: str
    password: str
    log_path: Path

    @property
    def auth(self) -> tuple[str, str]:
        return (FLOWER_USER, self.password)

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])

    def get(self, path: str, *, auth: bool = True) -> requests.Response:
        return requests.get(f"{self.url}{path}", auth=self.auth if auth else None, timeout=10)

    def wait_until_answering(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"flower exited with {self.process.returncode}")
            try:
                if self.get("/healthcheck").status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"flower did not answer in {timeout}s\n{self.log_tail()}")

    def wait_for_worker(self, prefix: str, timeout: float = 30.0) -> str:
        """The name of a worker whose events Flower receives (proof the event stream works)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = self.get("/workers?json=1").json().get("data", [])
            names = [worker["hostname"] for worker in workers if worker.get("status")]
            for name in names:
                if name.startswith(prefix):
                    return str(name)
            time.sleep(0.3)
        raise AssertionError(f"flower saw no worker {prefix}* in {timeout}s\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@contextlib.contextmanager
def running_flower(service: ServiceUnderTest, **variables: str) -> Iterator[FlowerProcess]:
    """Flower on a free loopback port for the service's settings (and these variables);
    stopped at the end."""
    port = free_port()
    password = secrets.token_urlsafe(18)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YFDOCS_", "FLOWER_"))}
    env.update(service.variables, YFDOCS_FLOWER_PASSWORD=password, YFDOCS_FLOWER_USER=FLOWER_USER)
    env.update(variables)
    log_path = service.data_dir / "flower.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "yfdocs", "flower", f"--port={port}"]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    running = FlowerProcess(process, f"http://127.0.0.1:{port}", password, log_path)
    try:
        running.wait_until_answering()
        yield running
    finally:
        running.stop()
