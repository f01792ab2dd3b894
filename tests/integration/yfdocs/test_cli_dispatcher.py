"""`yfdocs dispatcher` as an operator runs it, on SQLite and PostgreSQL, with the embedded
filesystem broker: `--once` publishes what the producers committed, a dead broker loses
nothing, the lease keeps a second dispatcher idle, and SIGTERM stops the loop."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session

from models import UploadJob, utcnow
from scheduling.dispatcher import hold_dispatcher_lease
from tests.pdf_samples import make_pdf
from tests.plugins.cli_fixtures import DEAD_BROKER, YFDOCS, Cli


def enqueue(cli: Cli, tmp_path: Path, name: str, **env: str) -> str:
    pdf = tmp_path / f"{name}.pdf"
    make_pdf(pdf, text=name)
    result = cli.run("enqueue", str(pdf), "--person", "P1", "--type", "diploma", **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def published_at(cli: Cli, job_id: str) -> object:
    with Session(cli.engine) as session:
        job = session.get(UploadJob, job_id)
        assert job is not None
        return job.published_at


def filesystem_messages(cli: Cli) -> list[Path]:
    return [path for path in (cli.data_dir / "broker" / "queue").iterdir() if path.is_file()]


def test_once_publishes_what_was_enqueued_and_only_once(cli: Cli, tmp_path: Path) -> None:
    jobs = {enqueue(cli, tmp_path, "first"), enqueue(cli, tmp_path, "second")}
    assert cli.queued_messages() == set()

    first = cli.run("dispatcher", "--once")

    assert first.returncode == 0, first.stderr
    assert cli.queued_messages() == jobs
    assert all(published_at(cli, job_id) is not None for job_id in jobs)

    again = cli.run("dispatcher", "--once")
    assert again.returncode == 0, again.stderr
    assert len(filesystem_messages(cli)) == 2, "no message twice"


def test_enqueue_needs_no_broker_and_a_dead_broker_loses_nothing(cli: Cli, tmp_path: Path) -> None:
    job_id = enqueue(cli, tmp_path, "no broker", YFDOCS_BROKER_URL=DEAD_BROKER)

    down = cli.run("dispatcher", "--once", YFDOCS_BROKER_URL=DEAD_BROKER)

    assert "Traceback" not in down.stderr, down.stderr
    assert published_at(cli, job_id) is None, "refused: still waiting for a dispatcher"

    back = cli.run("dispatcher", "--once")
    assert back.returncode == 0, back.stderr
    assert cli.queued_messages() == {job_id}
    assert published_at(cli, job_id) is not None


def test_a_dispatcher_finding_the_lease_held_does_nothing(cli: Cli, tmp_path: Path) -> None:
    job_id = enqueue(cli, tmp_path, "leased")
    assert hold_dispatcher_lease(cli.engine, "another-host:1", now=utcnow(), seconds=120)

    result = cli.run("dispatcher", "--once")

    assert result.returncode == 0, result.stderr
    assert published_at(cli, job_id) is None
    assert cli.queued_messages() == set()


def test_the_loop_publishes_as_work_arrives_and_stops_on_sigterm(cli: Cli, tmp_path: Path) -> None:
    log_path = tmp_path / "dispatcher.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [YFDOCS, "dispatcher"],
            cwd=cli.cwd,
            env=cli.env(YFDOCS_DISPATCH_INTERVAL="0.2"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        job_id = enqueue(cli, tmp_path, "while running")
        deadline = time.monotonic() + 30
        while job_id not in cli.queued_messages() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert job_id in cli.queued_messages(), log_path.read_text()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    # The lease it held lapses in a few passes: the next dispatcher takes over.
    later = utcnow() + timedelta(seconds=10)
    assert hold_dispatcher_lease(cli.engine, "next-host:1", now=later, seconds=5)
