"""The whole docker-compose.yml stack, for real: images, health checks, restarts, delivery.

Starts the stack with the `sandbox` profile and two workers under a project name of its
own, sends documents in, restarts RabbitMQ and then PostgreSQL while documents are on
their way, and checks that every document reached the simulator exactly once (its request
log counts accepted uploads by the PDF's SHA-256). The env file is written here, into a
temporary folder; the images are the local ones of scripts/docker/build-images.sh
(YFDOCS_IMAGE, YFDOCS_POSTGRES_IMAGE and YFDOCS_RABBITMQ_IMAGE replace them). Every
command is bounded in time, and the stack is always taken down with its volumes.

It runs with Compose v1 (`docker-compose`) and, where YFDOCS_TEST_COMPOSE_V2_CONFIG names
a Docker config folder holding the v2 plugin (scripts/docker/start-engine.sh makes one),
with Compose v2. Without a Docker engine it fails in CI and skips elsewhere.

Documents go in through the HTTP intake as an LMS sends them (`POST /v1/documents`, with a
caller key made by `yfdocs intake keys add` in the intake's container), and their states
come back from its `GET /v1/jobs`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from models import TERMINAL_STATES
from yfdocs.sample_documents import render_text_pdf

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
LOCAL_IMAGES = {
    "YFDOCS_IMAGE": "yfdocs:latest",
    "YFDOCS_POSTGRES_IMAGE": "yfdocs-postgres:15",
    "YFDOCS_RABBITMQ_IMAGE": "yfdocs-rabbitmq:3-management",
}
LONG_RUNNING = (
    "postgres",
    "rabbitmq",
    "sandbox",
    "worker",
    "beat",
    "dispatcher",
    "flower",
    "intake",
)
TENANT = "4028868"
PERSON = "191166"
WORKERS = 2
DOCUMENTS_PER_WAVE = 6
# API time runs this much faster in the simulator: tickets take 1.25 to 30 s of wall time,
# so documents are still on their way when the broker and the database restart.
TIME_SCALE = 4.0


def unavailable(message: str) -> None:
    """A missing engine or image fails the run in CI and skips it elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def run(argv: list[str], *, timeout: float, stdin: bytes | None = None) -> str:
    """Run one command within `timeout` seconds; its output, or an error naming it."""
    try:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, timeout=timeout, check=False, cwd=ROOT
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    if done.returncode != 0:
        raise AssertionError(
            f"exit {done.returncode}: {' '.join(argv)}\n"
            f"{done.stdout.decode(errors='replace')[-3000:]}\n"
            f"{done.stderr.decode(errors='replace')[-3000:]}"
        )
    return done.stdout.decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def compose_commands() -> dict[str, list[str]]:
    """The Compose implementations this machine has, as the argv that starts each."""
    commands: dict[str, list[str]] = {}
    if shutil.which("docker-compose"):
        commands["v1"] = ["docker-compose"]
    v2_config = os.environ.get("YFDOCS_TEST_COMPOSE_V2_CONFIG")
    if v2_config:
        commands["v2"] = ["docker", "--config", v2_config, "compose"]
    return commands


def require_engine(tool: str) -> list[str]:
    """The argv for this Compose, after checking the engine answers and the images exist."""
    if shutil.which("docker") is None:
        unavailable("docker is not installed (scripts/docker/start-engine.sh installs it)")
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        unavailable("the Docker engine did not answer `docker info` within 30 s")
    if info.returncode != 0:
        unavailable(f"the Docker engine does not answer: {info.stderr.decode()[-500:]}")
    command = compose_commands().get(tool)
    if command is None:
        unavailable(
            f"Compose {tool} is not available (v1: Debian's docker-compose; v2: "
            "YFDOCS_TEST_COMPOSE_V2_CONFIG, which scripts/docker/start-engine.sh prints)"
        )
    assert command is not None
    for variable, default in LOCAL_IMAGES.items():
        image = os.environ.get(variable, default)
        found = subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, timeout=30, check=False
        )
        if found.returncode != 0:
            unavailable(f"image {image} is missing (scripts/docker/build-images.sh builds it)")
    return command


@dataclass
class Stack:
    """One Compose project: its env file, its commands, and the documents sent into it."""

    command: list[str]
    folder: Path
    project: str = field(default_factory=lambda: f"yfdocs-test-{uuid.uuid4().hex[:10]}")
    sandbox_port: int = field(default_factory=free_port)
    intake_port: int = field(default_factory=free_port)
    intake_key: str = ""
    sent: dict[str, str] = field(default_factory=dict)  # job id -> the PDF's SHA-256
    timings: dict[str, float] = field(default_factory=dict)
    pending_at_restart: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env_file = self.folder / "yfdocs.env"
        database_password = secrets.token_hex(12)
        broker_password = secrets.token_hex(12)
        values = {
            "COMPOSE_PROJECT_NAME": self.project,
            "YFDOCS_ENV_FILE": str(self.env_file),
            **{name: os.environ.get(name, image) for name, image in LOCAL_IMAGES.items()},
            "YFDOCS_DEPLOYMENT": "sandbox",
            "POSTGRES_PASSWORD": database_password,
            "RABBITMQ_PASSWORD": broker_password,
            "YFDOCS_DATABASE_URL": (
                f"postgresql+psycopg://yfdocs:{database_password}@postgres:5432/yfdocs"
            ),
            "YFDOCS_BROKER_URL": f"amqp://yfdocs:{broker_password}@rabbitmq:5672//",
            "YFDOCS_FLOWER_PASSWORD": secrets.token_hex(12),
            "YFDOCS_API_URL": "http://sandbox:8765",
            "YFDOCS_TOKEN_URL": "http://sandbox:8765/connect/token",
            "YFDOCS_PLAIN_HTTP_HOSTS": "sandbox",
            "YFDOCS_CLIENT_ID": "sandbox-client",
            "YFDOCS_CLIENT_SECRET": "sandbox-secret",
            "YFDOCS_TENANT_ID": TENANT,
            # Published on loopback, on ports free now: several stacks may run at once.
            "YFDOCS_SANDBOX_HOST_PORT": str(self.sandbox_port),
            "YFDOCS_FLOWER_HOST_PORT": str(free_port()),
            "YFDOCS_INTAKE_HOST_PORT": str(self.intake_port),
            "YFDOCS_RABBITMQ_UI_HOST_PORT": str(free_port()),
            "YFDOCS_HEALTHCHECK_INTERVAL": "5s",
            # The simulator enforces the real limits on its faster clock; yfdocs is told the
            # same scale, with the real deployment's margin over the 0.6 s spacing.
            "YFDOCS_SANDBOX_TIME_SCALE": str(TIME_SCALE),
            "YFDOCS_MIN_INTERVAL": str(0.6 / TIME_SCALE + 0.05),
            "YFDOCS_RATE_PER_MINUTE": str(int(100 * TIME_SCALE)),
            "YFDOCS_QUOTA_WINDOW": str(86400 / TIME_SCALE),
            "YFDOCS_TOKEN_REFRESH_MARGIN": "30",
            "YFDOCS_POLL_FIRST_DELAY": "1",
            "YFDOCS_POLL_MAX_DELAY": "3",
            "YFDOCS_POLL_DEADLINE": str(25200 / TIME_SCALE),
            "YFDOCS_SWEEP_INTERVAL": "2",
            "YFDOCS_LEASE_SECONDS": "30",
            "YFDOCS_CONNECT_TIMEOUT": "3",
            "YFDOCS_READ_TIMEOUT": "10",
            "YFDOCS_RETRY_BASE_DELAY": "0.5",
            "YFDOCS_RETRY_MAX_DELAY": "3",
        }
        self.env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
        self.env_file.chmod(0o600)

    def compose(self, *args: str, timeout: float, stdin: bytes | None = None) -> str:
        argv = [*self.command, "--env-file", str(self.env_file), "--profile", "sandbox"]
        argv += ["-f", str(COMPOSE_FILE), "-p", self.project, *args]
        return run(argv, timeout=timeout, stdin=stdin)

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings[phase] = round(time.monotonic() - started, 1)

    def container_ids(self, service: str, *, exited_too: bool = False) -> list[str]:
        """The service's containers (v2 lists only running ones unless asked for all)."""
        flags = ["-a", "-q"] if exited_too else ["-q"]
        return self.compose("ps", *flags, service, timeout=60).split()

    def health(self) -> dict[str, str]:
        """Each long-running container's health, by `service/container id`."""
        states = {}
        for service in LONG_RUNNING:
            for container in self.container_ids(service):
                status = run(
                    ["docker", "inspect", "--format", "{{.State.Health.Status}}", container],
                    timeout=30,
                ).strip()
                states[f"{service}/{container[:12]}"] = status
        return states

    def wait_until_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = self.health()
            counts = Counter(name.split("/")[0] for name in states)
            complete = all(counts[s] == (WORKERS if s == "worker" else 1) for s in LONG_RUNNING)
            if complete and all(status == "healthy" for status in states.values()):
                return
            time.sleep(2)
        raise AssertionError(f"not every service was healthy within {timeout}s: {states}")

    def migrate_exit_code(self) -> int:
        (container,) = self.container_ids("migrate", exited_too=True)
        out = run(["docker", "inspect", "--format", "{{.State.ExitCode}}", container], timeout=30)
        return int(out)

    def sandbox(self, path: str) -> Any:
        answer = requests.get(f"http://127.0.0.1:{self.sandbox_port}{path}", timeout=10)
        answer.raise_for_status()
        return answer.json()

    def accepted_uploads_by_document(self) -> Counter[str]:
        """Uploads the simulator accepted, counted by the SHA-256 of the PDF they carried."""
        counted: Counter[str] = Counter()
        for entry in self.sandbox("/_sandbox/requests")["requests"]:
            if entry["method"] != "POST" or "/documents/" not in entry["path"]:
                continue
            if entry["status"] != 200:
                continue
            parts = (entry.get("multipart") or {}).get("parts", [])
            pdfs = [part["sha256"] for part in parts if part.get("filename")]
            assert len(pdfs) == 1, entry
            counted[pdfs[0]] += 1
        return counted

    def logs(self) -> str:
        try:
            return self.compose("logs", "--no-color", "--tail=40", timeout=60)
        except AssertionError as exc:
            return str(exc)

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "-t", "20", timeout=180)


def add_intake_key(stack: Stack) -> None:
    """A caller key for the test's LMS, made in the intake's container (shown once, on the
    last line of stdout)."""
    out = stack.compose(
        "exec",
        "-T",
        "intake",
        "yfdocs",
        "intake",
        "keys",
        "add",
        "--name",
        "ci-lms",
        "--tenant",
        TENANT,
        timeout=60,
    )
    stack.intake_key = out.strip().splitlines()[-1]


def intake(stack: Stack, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method,
        f"http://127.0.0.1:{stack.intake_port}{path}",
        headers={"Authorization": f"Bearer {stack.intake_key}"},
        timeout=30,
        **kwargs,
    )


def send_document(stack: Stack, content: bytes, name: str) -> str:
    """POST one PDF for PERSON to the intake, as an LMS does; returns the job id. A 503 (a
    service restarting) is sent again with the same event id, as an LMS retries."""
    event_id = f"event-{name}"
    deadline = time.monotonic() + 120
    while True:
        answer = intake(
            stack,
            "POST",
            "/v1/documents",
            data={
                "tenant_id": TENANT,
                "person_code": PERSON,
                "document_type": "certificate",
                "event_id": event_id,
            },
            files={"file": (name, content, "application/pdf")},
        )
        if answer.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert answer.status_code == 202, (answer.status_code, answer.text)
    job_id = str(answer.json()["id"])
    stack.sent[job_id] = hashlib.sha256(content).hexdigest()
    return job_id


def job_states(stack: Stack) -> dict[str, str]:
    """Every job's state, by id, from the intake's `GET /v1/jobs`."""
    answer = intake(stack, "GET", "/v1/jobs", params={"limit": 500})
    if answer.status_code != 200:
        raise AssertionError(f"GET /v1/jobs answered {answer.status_code}: {answer.text}")
    return {str(job["id"]): str(job["state"]) for job in answer.json()}


def send_wave(stack: Stack, wave: str) -> None:
    """DOCUMENTS_PER_WAVE documents, a few at a time, so that most are still pending."""

    def send(number: int) -> str:
        content = render_text_pdf(f"Certificate {wave}-{number}", [uuid.uuid4().hex])
        return send_document(stack, content, f"{wave}-{number}.pdf")

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(send, range(DOCUMENTS_PER_WAVE)))


def wait_until_all_complete(stack: Stack, timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        # The intake may answer 503 while a service restarts, or not at all for a moment.
        with contextlib.suppress(AssertionError, requests.RequestException):
            states = job_states(stack)
            if all(states.get(job_id) in TERMINAL_STATES for job_id in stack.sent):
                return states
        time.sleep(2)
    raise AssertionError(f"not every job ended within {timeout}s: {states}")


def in_flight(states: dict[str, str], stack: Stack) -> list[str]:
    return [job for job in stack.sent if states.get(job) not in TERMINAL_STATES]


@pytest.fixture(params=["v1", "v2"], ids=lambda tool: f"compose-{tool}")
def stack(
    request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[Stack]:
    command = require_engine(request.param)
    under_test = Stack(command, tmp_path)
    failed = True
    try:
        with under_test.timed("up"):
            under_test.compose(
                "up", "-d", "--no-build", "--scale", f"worker={WORKERS}", timeout=300
            )
        yield under_test
        failed = False
    finally:
        if failed:  # `up` itself failed: the test's own failure prints the logs
            sys.stderr.write(f"\n--- logs of {under_test.project}\n{under_test.logs()}\n")
        with under_test.timed("down"):
            under_test.down()
        with capsys.disabled():  # the timings belong in every run's output
            print(
                f"\n{under_test.project} (compose {request.param}) seconds: "
                f"{under_test.timings}; jobs pending at each restart: "
                f"{under_test.pending_at_restart}"
            )


@pytest.mark.timeout(900)
def test_documents_arrive_exactly_once_across_broker_and_database_restarts(stack: Stack) -> None:
    try:
        with stack.timed("healthy"):
            stack.wait_until_healthy(timeout=240)
        assert stack.migrate_exit_code() == 0
        add_intake_key(stack)

        with stack.timed("restart rabbitmq"):
            send_wave(stack, "before-broker-restart")
            states = job_states(stack)
            stack.pending_at_restart["rabbitmq"] = len(in_flight(states, stack))
            assert in_flight(states, stack), "the broker must restart while work is pending"
            stack.compose("restart", "-t", "20", "rabbitmq", timeout=180)

        with stack.timed("restart postgres"):
            send_wave(stack, "before-database-restart")
            states = job_states(stack)
            stack.pending_at_restart["postgres"] = len(in_flight(states, stack))
            assert in_flight(states, stack), "the database must restart while work is pending"
            stack.compose("restart", "-t", "20", "postgres", timeout=180)

        with stack.timed("deliver"):
            states = wait_until_all_complete(stack, timeout=300)
        assert {states[job] for job in stack.sent} == {"complete"}, states

        uploads = stack.accepted_uploads_by_document()
        sent = Counter(stack.sent.values())
        assert len(sent) == 2 * DOCUMENTS_PER_WAVE, "every document is a different PDF"
        assert uploads == sent, f"accepted uploads per document: {dict(uploads)}"

        with stack.timed("healthy again"):
            stack.wait_until_healthy(timeout=120)
    except BaseException:
        sys.stderr.write(f"\n--- logs of {stack.project}\n{stack.logs()}\n")
        raise


def run_entrypoint(image: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = ["docker", "run", "--rm"]
    for name, value in environment.items():
        argv += ["-e", f"{name}={value}"]
    return subprocess.run(
        [*argv, image, "true"], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_image_refuses_the_placeholder_outside_sandbox_mode() -> None:
    require_engine("v1")
    image = os.environ.get("YFDOCS_IMAGE", LOCAL_IMAGES["YFDOCS_IMAGE"])
    placeholder = {"YFDOCS_CLIENT_SECRET": "change-me", "POSTGRES_PASSWORD": "change-me"}

    refused = run_entrypoint(image, placeholder)
    assert refused.returncode == 78, refused
    assert "YFDOCS_CLIENT_SECRET POSTGRES_PASSWORD" in refused.stderr
    assert "change-me" not in refused.stderr.replace("placeholder 'change-me'", ""), "no values"

    sandbox = {"YFDOCS_DEPLOYMENT": "sandbox", **placeholder}
    pointed = {
        "YFDOCS_API_URL": "http://sandbox:8765",
        "YFDOCS_TOKEN_URL": "http://sandbox:8765/connect/token",
    }
    assert run_entrypoint(image, {**sandbox, **pointed}).returncode == 0
    real_api = {**pointed, "YFDOCS_API_URL": "https://api.youforce.com"}
    refused = run_entrypoint(image, {**sandbox, **real_api})
    assert refused.returncode == 78, refused
    assert "YFDOCS_API_URL does not point at the sandbox" in refused.stderr
    assert run_entrypoint(image, {"YFDOCS_CLIENT_SECRET": "a-real-one"}).returncode == 0
