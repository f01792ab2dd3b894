"""The HTTP intake under test: a real uvicorn server on 127.0.0.1, in a thread of the test
process, on each kind of database; stopped when the test ends.

`start_intake(**settings)` builds one with these settings (`intake` is one on the
defaults). The test process holds the same services, so a test can make keys, seed
persons and read jobs directly. The intake publishes nothing (the dispatcher does), so
there is no broker here. Tests of the real command run `yfdocs intake` as a child process
(`IntakeProcess`).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from config import Settings
from intake.callers import NewIntakeKey, add_key
from intake.events import IntakeServices
from intake.http import create_app
from models import JobEvent, UploadJob, utcnow
from scheduling.token_windows import open_windows
from tests.fake_publisher import FakePublisher
from tests.plugins.cli_fixtures import YFDOCS, Cli
from tests.plugins.dispatch_fixtures import open_window
from worker.dispatcher import dispatch_once

__all__ = ["IntakeProcess", "IntakeUnderTest", "UvicornThread", "dispatch_pass"]

TENANT = "4028868"
OTHER_TENANT = "4028869"


def dispatch_pass(
    engine: Engine,
    settings: Settings,
    *tenants: str,
    publisher: FakePublisher | None = None,
) -> list[str]:
    """One real dispatcher pass, with the tenants' delivery windows open (a valid token
    each), into a recording publisher: the ids of the uploads it sent. The intake and the
    persons sync never publish; this is how a test sees what they left for the dispatcher."""
    now = utcnow()
    already = open_windows(engine, now=now, margin_seconds=settings.token_refresh_margin)
    for tenant in tenants or (TENANT,):
        if tenant not in already:
            open_window(engine, tenant, expires_at=now + timedelta(hours=1))
    publisher = publisher if publisher is not None else FakePublisher()
    dispatch_once(engine, settings, publisher, owner="test-dispatcher", clock=utcnow)
    return publisher.published


class UvicornThread:
    """uvicorn serving `app` on 127.0.0.1 (a free port) in a thread, until `stop`."""

    def __init__(self, app: FastAPI, **config: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **config)
        )
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)


@dataclass
class IntakeUnderTest:
    """A running intake, its services, and shortcuts to what it stored."""

    url: str
    services: IntakeServices
    keys: dict[str, NewIntakeKey] = field(default_factory=dict)

    @property
    def engine(self) -> Engine:
        return self.services.engine

    def add_key(
        self, name: str = "lms", tenants: tuple[str, ...] = (TENANT,), **options: Any
    ) -> NewIntakeKey:
        made = add_key(self.engine, name=name, tenants=tenants, **options)
        self.keys[name] = made
        return made

    def dispatch(self, *tenants: str, publisher: FakePublisher | None = None) -> list[str]:
        """What a dispatcher pass sends now of the jobs in the database (`dispatch_pass`)."""
        return dispatch_pass(self.engine, self.services.settings, *tenants, publisher=publisher)

    def bearer(self, name: str = "lms") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name].key}"}

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return requests.post(self.url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return requests.get(self.url + path, **kwargs)

    def job_count(self) -> int:
        with Session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(UploadJob)).one())

    def job(self, job_id: str) -> UploadJob:
        with Session(self.engine) as session:
            job = session.get(UploadJob, job_id)
            assert job is not None
            return job

    def events(self, job_id: str) -> list[JobEvent]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))
                )
            )

    def stored_files(self) -> list[Path]:
        root = Path(self.services.settings.storage_dir)
        return [path for path in root.rglob("*.pdf")] if root.exists() else []


StartIntake = Callable[..., IntakeUnderTest]


def intake_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "intake-data",
        "database_url": database_url,
        "tenant_id": TENANT,
        "max_file_bytes": 400_000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def start_intake(
    tmp_path: Path, database_url: str, db_engine: Engine, test_ca: tuple[Any, Path]
) -> Iterator[StartIntake]:
    """Starts intakes with setting overrides; stops each one at teardown."""
    servers: list[UvicornThread] = []

    def start(**overrides: Any) -> IntakeUnderTest:
        overrides.setdefault("intake_fetch_ca_bundle", test_ca[1])
        settings = intake_settings(tmp_path, database_url, **overrides)
        services = IntakeServices.build(settings, db_engine)
        server = UvicornThread(create_app(services))
        servers.append(server)
        return IntakeUnderTest(url=server.start(), services=services)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def intake(start_intake: StartIntake) -> IntakeUnderTest:
    """An intake on the defaults with one key, `lms`, for the tenant 4028868."""
    running = start_intake()
    running.add_key("lms", (TENANT,))
    return running


class IntakeProcess:
    """`yfdocs intake` as a child process for `cli`'s data dir and database."""

    def __init__(self, cli: Cli, log_path: Path, **env: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        with log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [YFDOCS, "intake", "--port", str(self.port)],
                cwd=cli.cwd,
                env=cli.env(**env),
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"yfdocs intake exited:\n{self.log()}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"yfdocs intake did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM (uvicorn's graceful shutdown), then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                return self.process.wait(timeout=15)
        self.kill()
        return self.process.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def intake_process(cli: Cli, tmp_path: Path) -> Iterator[Callable[..., IntakeProcess]]:
    """Starts `yfdocs intake` processes (env overrides as keywords); stops each one."""
    started: list[IntakeProcess] = []

    def start(**env: str) -> IntakeProcess:
        process = IntakeProcess(cli, tmp_path / f"intake-{len(started)}.log", **env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
