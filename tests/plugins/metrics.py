"""`yfdocs metrics` as a child process of a test, with a bearer token of its own."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.plugins.flower import free_port
from tests.plugins.worker_fixtures import ServiceUnderTest

__all__ = ["Exporter", "Samples", "running_exporter"]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Exporter:
    """The exporter's process, its URL and the token every scrape sends."""

    process: subprocess.Popen[bytes]
    url: str
    token: str
    log_path: Path

    def text(self) -> str:
        """One scrape's exposition, as Prometheus reads it."""
        answer = requests.get(
            self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )
        answer.raise_for_status()
        return answer.text

    def scrape(self) -> Samples:
        """One scrape, by (sample name, sorted labels)."""
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(self.text())
            for sample in family.samples
        }


@contextlib.contextmanager
def running_exporter(service: ServiceUnderTest) -> Iterator[Exporter]:
    """`yfdocs metrics` on a free loopback port for the service's settings, answering
    before this returns; stopped at the end."""
    port, token = free_port(), secrets.token_urlsafe(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("YFDOCS_")}
    env.update(service.variables, YFDOCS_METRICS_TOKEN=token)
    log_path = service.data_dir / "metrics.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "yfdocs", "metrics", f"--port={port}"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Exporter(process, f"http://127.0.0.1:{port}/metrics", token, log_path)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                running.text()
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"yfdocs metrics did not answer:\n{log_path.read_text()}"
                    ) from None
                time.sleep(0.2)
        yield running
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
