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
from typing import Any, NoReturn

import pytest
import requests

from intake.stores import s3_client_from_environment
from tests.plugins.processes import stop_process

__all__ = ["S3Bucket", "S3Server", "create_bucket", "start_s3_server"]

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
        stop_process(self.process)


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


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def start_s3_server(folder: Path) -> S3Server:
    """moto's server on a free loopback port, its log in `folder`; RuntimeError if it does
    not answer within 30 s. The caller stops it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = folder / "moto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = S3Server(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(requests.ConnectionError):
            requests.get(f"{server.endpoint}/moto-api/", timeout=1)
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"moto's server did not start: {log_path.read_text(errors='replace')}")


def create_bucket(server: S3Server, prefix: str = "documents/pdf") -> S3Bucket:
    """A fresh bucket on `server`."""
    name = f"yfdocs-test-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return S3Bucket(server, name, prefix)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    try:
        import moto.server  # noqa: F401  (only to know it is installed)
    except ImportError as exc:
        _unavailable(f"moto's server is not installed ({exc}): python3 dev.py test builds .venv")
    try:
        server = start_s3_server(tmp_path_factory.mktemp("moto"))
    except RuntimeError as exc:
        _unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> S3Bucket:
    """A fresh bucket on the session's server (the server goes away with the session)."""
    return create_bucket(s3_server)
