"""A real S3-protocol server for the tests: moto's standalone server on 127.0.0.1.

Started once per test session by the interpreter running the tests, on a free port, and
stopped when the session ends. Not by `scripts/test-services.sh`: that script runs before
`dev.py test` builds `.venv` on a fresh CI machine, and moto lives in `.venv` (moto[s3],
flask, flask-cors are dev dependencies). Started from here it exists exactly when the tests
can use it, is the same on a developer's machine and in CI, and needs no clean-up elsewhere.
A server that does not start fails the test in CI (a missing service is a failure, not a
skip) and skips it elsewhere.

Worker processes reach it through the standard AWS variables (`S3Server.environment`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from intake.stores import s3_client_from_environment

__all__ = ["S3Bucket", "S3Server"]

REGION = "eu-west-1"


@dataclass
class S3Server:
    """moto's server process and the AWS variables that point a client at it."""

    process: subprocess.Popen[bytes]
    endpoint: str
    log_path: Path

    @property
    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "yfdocs-test-key",
            "AWS_SECRET_ACCESS_KEY": "yfdocs-test-secret",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
        }

    def client(self) -> Any:
        return s3_client_from_environment(self.environment)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@dataclass
class S3Bucket:
    """A bucket of its own for one test, and a prefix inside it."""

    server: S3Server
    name: str
    prefix: str

    @property
    def location_text(self) -> str:
        return f"s3://{self.name}/{self.prefix}"

    def object_count(self) -> int:
        listed = self.server.client().list_objects_v2(Bucket=self.name)
        return int(listed.get("KeyCount", 0))


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    try:
        import moto.server  # noqa: F401  (only to know it is installed)
    except ImportError as exc:
        _unavailable(f"moto's server is not installed ({exc}): python3 dev.py test builds .venv")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = S3Server(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.ConnectionError):
            requests.get(f"{server.endpoint}/moto-api/", timeout=1)
            break
        if process.poll() is not None:
            break
        time.sleep(0.1)
    else:
        process.poll()
    if process.poll() is not None:
        _unavailable(f"moto's server did not start: {log_path.read_text(errors='replace')}")
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> S3Bucket:
    """A fresh bucket on the session's server (the server goes away with the session)."""
    name = f"yfdocs-test-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return S3Bucket(s3_server, name, "documents/pdf")
