"""The whole service under test: a real sandbox, real worker processes, a real broker.

A worker started with its beat runs the dispatcher's pass every `YFDOCS_DISPATCH_INTERVAL`;
a test that starts workers without beat starts a dispatcher of its own (`start_dispatcher`).

`service` gives a `ServiceUnderTest` on the embedded defaults (SQLite, filesystem broker);
tests parametrised with `broker` run the same on RabbitMQ and Redis. A broker that is
missing in CI fails the test; on a developer's machine it skips with the reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlmodel import Session, col, select

from config import Settings
from intake.producer import EnqueueRequest, enqueue_document
from intake.storage import FilesystemDocumentStore
from models import TERMINAL_STATES, JobEvent, UploadJob, make_engine, migrate
from sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, SandboxServer
from worker.celery_app import create_celery_app
from yfdocs.sample_documents import render_text_pdf

BROKER_ENV = {"redis": "YFDOCS_TEST_REDIS_URL", "amqp": "YFDOCS_TEST_AMQP_URL"}


def require_service(env_name: str) -> str:
    """The URL of a real service the tests need: missing fails in CI, skips elsewhere."""
    url = os.environ.get(env_name)
    if url:
        return url
    message = f"{env_name} is not set (scripts/test-services.sh starts the services)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def broker_url_for(kind: str) -> str | None:
    """None for the embedded filesystem broker, else the real broker's URL."""
    if kind == "filesystem":
        return None
    return require_service(BROKER_ENV[kind])


def purge_broker(settings: Settings) -> None:
    """Empty the shared queue of a real broker, so one test's leftovers never reach another."""
    if settings.uses_filesystem_broker:
        return
    app = create_celery_app(settings)
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in app.amqp.queues.values():
            queue.bind(channel).declare()
            queue.bind(channel).purge()


@dataclass
class WorkerProcess:
    """A `yfdocs worker` (or `yfdocs dispatcher`) in its own process group, so a kill takes
    its pool children too."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 20.0) -> int:
        """Warm shutdown through the main process (it stops its pool), then SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        self.kill()
        return self.process.wait()

    def kill(self) -> None:
        """SIGKILL the worker and its pool: nothing gets to clean up."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class ServiceUnderTest:
    """Sandbox + settings + producer in the test process; workers as child processes."""

    sandbox: SandboxServer
    data_dir: Path
    variables: dict[str, str]
    workers: list[WorkerProcess] = field(default_factory=list)
    dispatchers: list[WorkerProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.settings = self.make_settings()
        self.engine = make_engine(self.settings.resolved_database_url)
        migrate(self.engine)
        self.app = create_celery_app(self.settings)
        self.store = FilesystemDocumentStore(self.settings.storage_dir)

    def make_settings(self, **overrides: str) -> Settings:
        values = {**self.variables, **overrides}
        fields = {name.removeprefix("YFDOCS_").lower(): value for name, value in values.items()}
        fields.setdefault("database_url", None)  # type: ignore[arg-type]
        fields.setdefault("broker_url", None)  # type: ignore[arg-type]
        return Settings(**fields)  # type: ignore[arg-type]

    def configure(self, **variables: str) -> None:
        """Change settings for workers started from now on (and for the producer)."""
        self.variables.update(variables)
        self.settings = self.make_settings()

    def environment(self, **overrides: str) -> dict[str, str]:
        """The test's environment with the service's settings (and no developer's ones)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("YFDOCS_")}
        env.update(self.variables, **overrides)
        return env

    def _spawn(self, args: list[str], log_path: Path) -> WorkerProcess:
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "yfdocs", *args],
                env=self.environment(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return WorkerProcess(process, log_path)

    def start_worker(self, *, beat: bool = True, concurrency: int = 2) -> WorkerProcess:
        """A worker; with `beat` it also runs the sweeper and the dispatcher's passes."""
        index = len(self.workers)
        args = ["worker", f"--concurrency={concurrency}", "--loglevel=INFO"]
        args.append(f"--hostname=test-{index}-{os.getpid()}@%h")
        if not beat:
            args.append("--no-beat")
        worker = self._spawn(args, self.data_dir / f"worker-{index}.log")
        self.workers.append(worker)
        return worker

    def start_dispatcher(self) -> WorkerProcess:
        """`yfdocs dispatcher`: the passes that publish work, for workers started without
        beat. Stopped (SIGTERM) with the workers at the end of the test."""
        log_path = self.data_dir / f"dispatcher-{len(self.dispatchers)}.log"
        dispatcher = self._spawn(["dispatcher"], log_path)
        self.dispatchers.append(dispatcher)
        return dispatcher

    def dispatch_once(self, **overrides: str) -> subprocess.CompletedProcess[str]:
        """`yfdocs dispatcher --once` with the service's settings (and `overrides`)."""
        return subprocess.run(
            [sys.executable, "-m", "yfdocs", "dispatcher", "--once"],
            env=self.environment(**overrides),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def enqueue(
        self,
        person_code: str = "191166",
        document_type: str = "certificate",
        *,
        title: str | None = None,
        **fields: Any,
    ) -> str:
        content = render_text_pdf(title or f"{document_type} for {person_code}", [str(time.time())])
        request = EnqueueRequest(
            document=content,
            person_code=person_code,
            document_type=document_type,
            file_name=f"{document_type}.pdf",
            **fields,
        )
        result = enqueue_document(
            request,
            engine=self.engine,
            store=self.store,
            settings=self.settings,
        )
        return result.job.id

    def job(self, job_id: str) -> UploadJob:
        with Session(self.engine) as session:
            job = session.get(UploadJob, job_id)
            assert job is not None
            return job

    def events(self, job_id: str) -> list[JobEvent]:
        with Session(self.engine) as session:
            statement = select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))
            return list(session.exec(statement))

    def wait_until(
        self, predicate: Callable[[], bool], *, timeout: float = 60.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        logs = "\n---\n".join(process.log_tail() for process in self.workers + self.dispatchers)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")

    def wait_until_ready(self, workers: list[WorkerProcess], timeout: float = 60.0) -> None:
        """Wait until each worker says it is ready to take tasks."""

        def logged(worker: WorkerProcess) -> str:
            return worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""

        self.wait_until(
            lambda: all("ready." in logged(worker) for worker in workers),
            timeout=timeout,
            what="the workers to be ready",
        )

    def wait_for_end(self, job_ids: list[str], timeout: float = 60.0) -> dict[str, UploadJob]:
        """Wait until every job is complete, failed or expired; returns them by id."""

        def finished() -> bool:
            return all(self.job(job_id).job_state in TERMINAL_STATES for job_id in job_ids)

        states = lambda: {job_id: self.job(job_id).state for job_id in job_ids}  # noqa: E731
        try:
            self.wait_until(finished, timeout=timeout, what="jobs to finish")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nstates: {states()}") from None
        return {job_id: self.job(job_id) for job_id in job_ids}

    def received(self) -> list[dict[str, Any]]:
        """What the sandbox received, in order (its inspection endpoint)."""
        answer = requests.get(f"{self.sandbox.url}/_sandbox/requests", timeout=10)
        answer.raise_for_status()
        payload = answer.json()
        return list(payload["requests"] if isinstance(payload, dict) else payload)

    def accepted_uploads(self) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self.received()
            if entry.get("method") == "POST"
            and "/documents/" in entry.get("path", "")
            and entry.get("status") == 200
        ]

    def close(self) -> None:
        for process in self.workers + self.dispatchers:
            process.stop()
        self.engine.dispose()


def service_variables(data_dir: Path, sandbox: SandboxServer, broker: str) -> dict[str, str]:
    variables = {
        "YFDOCS_DATA_DIR": str(data_dir),
        "YFDOCS_API_URL": sandbox.url,
        "YFDOCS_TOKEN_URL": sandbox.token_url,
        "YFDOCS_CLIENT_ID": DEFAULT_CLIENT_ID,
        "YFDOCS_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "YFDOCS_TENANT_ID": DEFAULT_TENANT_ID,
        "YFDOCS_POLL_FIRST_DELAY": "0.5",
        "YFDOCS_POLL_MAX_DELAY": "1.0",
        "YFDOCS_SWEEP_INTERVAL": "1.0",
        "YFDOCS_LEASE_SECONDS": "20",
        # The fleet governor is on, at a pace this sandbox (limits off) never refuses.
        "YFDOCS_MIN_INTERVAL": "0.02",
        "YFDOCS_RATE_PER_MINUTE": "3000",
        "YFDOCS_CONNECT_TIMEOUT": "2",
        "YFDOCS_READ_TIMEOUT": "6",
        "YFDOCS_RETRY_BASE_DELAY": "0.2",
        "YFDOCS_RETRY_MAX_DELAY": "1.0",
    }
    url = broker_url_for(broker)
    if url is not None:
        variables["YFDOCS_BROKER_URL"] = url
    return variables


class SandboxProcess:
    """The sandbox in a process of its own, for tests that measure timing at the API.

    In the test process its threads would share the interpreter lock with the test's own
    polling, and a request could be recorded late: arrival gaps would look shorter than
    they were on the wire.
    """

    def __init__(self, data_dir: Path, *, time_scale: float) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.token_url = f"{self.url}/connect/token"
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = (data_dir / "sandbox.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox",
                "--port",
                str(self.port),
                "--time-scale",
                str(time_scale),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.ConnectionError):
                requests.get(f"{self.url}/_sandbox/stats", timeout=1).raise_for_status()
                return
            time.sleep(0.1)
        self.stop()
        raise AssertionError("the sandbox process did not start")

    def patch_config(self, patch: dict[str, Any]) -> None:
        requests.post(f"{self.url}/_sandbox/config", json=patch, timeout=10).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._log.close()


@pytest.fixture
def broker() -> str:
    """The broker kind; tests parametrise it over filesystem, redis and amqp."""
    return "filesystem"


@pytest.fixture
def service(tmp_path: Path, sandbox: SandboxServer, broker: str) -> Iterator[ServiceUnderTest]:
    data_dir = tmp_path / "yfdocs"
    under_test = ServiceUnderTest(sandbox, data_dir, service_variables(data_dir, sandbox, broker))
    purge_broker(under_test.settings)
    yield under_test
    under_test.close()


@pytest.fixture
def fleet_service(tmp_path: Path) -> Iterator[ServiceUnderTest]:
    """The service against a sandbox process with the real limits, at time scale 5."""
    data_dir = tmp_path / "yfdocs"
    sandbox = SandboxProcess(tmp_path / "sandbox", time_scale=5.0)
    under_test = ServiceUnderTest(
        sandbox,  # type: ignore[arg-type]  # the same url, token_url and patch_config
        data_dir,
        service_variables(data_dir, sandbox, "filesystem"),  # type: ignore[arg-type]
    )
    yield under_test
    under_test.close()
    sandbox.stop()
