"""`yfdocs demo`: the whole service on embedded defaults, against the sandbox, in a minute.

Starts the Youforce sandbox (time scale 60: a ticket that takes a minute takes a second),
a real worker process with the sweeper's beat, enqueues one sample document of each of the
seven types, one the sandbox will reject and one file the producer refuses, shows a live
progress bar, prints the outcome table and shuts everything down. Exit status 0 when
every job ended as expected.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import Engine

from api_client import DocumentType
from config import Settings
from intake.producer import EnqueueRejected, EnqueueRequest, enqueue_document
from intake.storage import FilesystemDocumentStore
from models import TERMINAL_STATES, JobState, UploadJob, make_engine, migrate
from models import jobs as job_table
from yfdocs.sample_documents import render_text_pdf
from yfdocs.terminal_text import user_text

__all__ = ["DemoSample", "demo_samples", "run_demo"]

DEMO_TIME_SCALE = 60.0
DEMO_PERSON = "191166"
DEMO_REJECTED_PERSON = "900001"  # the sandbox's person whose personnel file refuses documents
REFUSED = "refused"


@dataclass(frozen=True)
class DemoSample:
    """One document the demo sends, and how its journey should end."""

    label: str
    path: Path
    person_code: str
    document_type: DocumentType
    expected: str  # a JobState value, or "refused" by the producer


def demo_samples(folder: Path) -> list[DemoSample]:
    """Write the sample files into `folder` and describe them."""
    folder.mkdir(parents=True, exist_ok=True)
    courses = {
        DocumentType.CERTIFICATE: "Certificate - Fire safety and evacuation",
        DocumentType.DIPLOMA: "Diploma - Advanced Excel",
        DocumentType.APPRAISAL_REVIEW: "Appraisal review 2026",
        DocumentType.PERFORMANCE_REVIEW: "Performance review Q3",
        DocumentType.CAREER_AGREEMENT: "Career agreement - team lead track",
        DocumentType.CAREER_MAIL: "Career correspondence - mentoring",
        DocumentType.CAREER_OTHER: "Career document - language course",
    }
    samples = []
    for document_type, title in courses.items():
        path = folder / f"{document_type.value}_{DEMO_PERSON}.pdf"
        path.write_bytes(render_text_pdf(title, [f"Employee {DEMO_PERSON}", "Issued by the LMS"]))
        samples.append(DemoSample(title, path, DEMO_PERSON, document_type, JobState.COMPLETE.value))
    rejected = folder / f"certificate_{DEMO_REJECTED_PERSON}.pdf"
    rejected.write_bytes(render_text_pdf("Certificate - First aid", ["Locked personnel file"]))
    samples.append(
        DemoSample(
            "Certificate for a locked personnel file",
            rejected,
            DEMO_REJECTED_PERSON,
            DocumentType.CERTIFICATE,
            JobState.FAILED.value,
        )
    )
    not_a_pdf = folder / "scan_of_diploma.pdf"
    not_a_pdf.write_bytes(b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(512))
    samples.append(
        DemoSample("A PNG named .pdf", not_a_pdf, DEMO_PERSON, DocumentType.DIPLOMA, REFUSED)
    )
    return samples


def _demo_overrides(base: Settings, sandbox_url: str, token_url: str) -> dict[str, str]:
    """The demo's settings as YFDOCS_ variables: for this process and the worker alike."""
    from sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID

    values: dict[str, object] = {
        "data_dir": base.data_dir / "demo",
        "api_url": sandbox_url,
        "token_url": token_url,
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "tenant_id": DEFAULT_TENANT_ID,
        "poll_first_delay": 1.0,
        "poll_max_delay": 4.0,
        "poll_deadline": 120.0,
        "sweep_interval": 2.0,
        "lease_seconds": 30.0,
        "read_timeout": 10.0,
        "token_refresh_margin": 10.0,  # tokens live 60 s at this time scale
        # The sandbox's interval at this time scale, plus the margin a real deployment
        # keeps for the jitter between a granted start and the arrival at the API.
        "min_interval": 0.6 / DEMO_TIME_SCALE + 0.05,
    }
    return {f"YFDOCS_{name.upper()}": str(value) for name, value in values.items()}


def _settings_from(variables: dict[str, str]) -> Settings:
    """Settings from exactly these variables (the embedded database and broker)."""
    fields = {name.removeprefix("YFDOCS_").lower(): value for name, value in variables.items()}
    return Settings(database_url=None, broker_url=None, **fields)  # type: ignore[arg-type]


def _child_environment(variables: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("YFDOCS_")}
    env.update(variables)
    return env


def _stop(process: subprocess.Popen[bytes] | None, grace: float = 20.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _jobs(engine: Engine, job_ids: list[str]) -> dict[str, UploadJob]:
    return job_table.jobs_by_ids(engine, job_ids)


def run_demo(base_settings: Settings, *, keep: bool = False, timeout: float = 180.0) -> int:
    """Run the demo; returns the process exit status."""
    from sandbox import DelayDistribution, SandboxConfig, SandboxServer

    console = Console()
    sandbox = SandboxServer(
        SandboxConfig(
            time_scale=DEMO_TIME_SCALE,
            ticket_delay=DelayDistribution(kind="uniform", low=60.0, high=240.0),
        )
    ).start()
    variables = _demo_overrides(base_settings, sandbox.url, sandbox.token_url)
    settings = _settings_from(variables)
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    settings.data_dir.mkdir(parents=True)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    env = _child_environment(variables)
    log_path = settings.data_dir / "worker.log"
    worker: subprocess.Popen[bytes] | None = None
    flower: subprocess.Popen[bytes] | None = None
    try:
        console.print(
            f"[bold]yfdocs demo[/]: sandbox at {sandbox.url}, data in {settings.data_dir}"
        )
        with log_path.open("wb") as log_file:
            worker = subprocess.Popen(
                [sys.executable, "-m", "yfdocs", "worker", "--loglevel=INFO"],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        store = FilesystemDocumentStore(settings.storage_dir)
        samples = demo_samples(settings.data_dir / "samples")
        job_ids: dict[str, DemoSample] = {}
        refusals: dict[str, str] = {}
        for sample in samples:
            request = EnqueueRequest(
                document=sample.path,
                person_code=sample.person_code,
                document_type=sample.document_type,
                description=sample.label,
                source="demo",
            )
            try:
                result = enqueue_document(request, engine=engine, store=store, settings=settings)
            except EnqueueRejected as exc:
                refusals[sample.label] = str(exc)
                continue
            job_ids[result.job.id] = sample

        finished = _follow(console, engine, list(job_ids), worker, timeout)
        jobs = _jobs(engine, list(job_ids))
        ok = _print_outcomes(console, samples, job_ids, jobs, refusals) and finished
        if keep:
            flower = _keep_running(console, settings, env)
        return 0 if ok else 1
    finally:
        _stop(flower)
        _stop(worker)
        sandbox.stop()
        engine.dispose()
        if worker is not None and worker.returncode not in (0, None):
            console.print(f"[yellow]worker exited with {worker.returncode}; see {log_path}[/]")


def _follow(
    console: Console,
    engine: Engine,
    job_ids: list[str],
    worker: subprocess.Popen[bytes],
    timeout: float,
) -> bool:
    """Show a live progress bar until every job is finished; False on timeout or a dead worker."""
    columns = (
        TextColumn("[bold]delivering"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    deadline = time.monotonic() + timeout
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("", total=len(job_ids))
        while True:
            jobs = _jobs(engine, job_ids).values()
            done = sum(1 for job in jobs if job.job_state in TERMINAL_STATES)
            counts: dict[str, int] = {}
            for job in jobs:
                counts[job.state] = counts.get(job.state, 0) + 1
            summary = ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))
            progress.update(bar, completed=done, description=summary)
            if done == len(job_ids):
                return True
            if worker.poll() is not None:
                console.print(f"[red]the worker stopped (exit {worker.returncode})[/]")
                return False
            if time.monotonic() > deadline:
                console.print(f"[red]timed out after {timeout:.0f}s[/]")
                return False
            time.sleep(0.3)


def _print_outcomes(
    console: Console,
    samples: list[DemoSample],
    job_ids: dict[str, DemoSample],
    jobs: dict[str, UploadJob],
    refusals: dict[str, str],
) -> bool:
    table = Table(title="Outcome")
    for column in ("document", "type", "person", "state", "ticket / reason", "as expected"):
        table.add_column(column)
    by_label = {sample.label: job_id for job_id, sample in job_ids.items()}
    all_expected = True
    for sample in samples:
        job_id = by_label.get(sample.label)
        if job_id is None:
            state, detail = REFUSED, refusals.get(sample.label, "")
        else:
            job = jobs[job_id]
            state = job.state
            detail = job.last_error or job.ticket_id or ""
        expected = state == sample.expected
        all_expected &= expected
        table.add_row(
            user_text(sample.label),
            sample.document_type.value,
            user_text(sample.person_code),
            user_text(state),
            user_text(detail),
            "[green]yes[/]" if expected else f"[red]no (expected {sample.expected})[/]",
        )
    console.print(table)
    verdict = "[green]every job ended as expected[/]" if all_expected else "[red]unexpected[/]"
    console.print(verdict)
    return all_expected


def _keep_running(
    console: Console, settings: Settings, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    password = secrets.token_urlsafe(12)
    flower_env = dict(env, YFDOCS_FLOWER_PASSWORD=password)
    flower = subprocess.Popen(
        [sys.executable, "-m", "yfdocs", "flower", f"--port={settings.flower_port}"],
        env=flower_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    console.print(
        f"Flower: http://127.0.0.1:{settings.flower_port}/ (user {settings.flower_user}, "
        f"password {password}). Jobs: YFDOCS_DATA_DIR={settings.data_dir} yfdocs status. "
        "Ctrl-C stops everything."
    )
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping ...")
    return flower
