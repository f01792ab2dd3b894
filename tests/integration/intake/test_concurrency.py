"""Races between processes: one job per document, one token fetch per fleet."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api_client import AccessToken
from models import JobEvent, TokenCacheEntry, UploadJob, utcnow
from scheduling.token_cache import DatabaseTokenCache
from tests.pdf_samples import make_pdf
from tests.plugins.cli_fixtures import Cli

START_DELAY = 4.0  # long enough for every process to import and wait at the line

ENQUEUE_SCRIPT = """
import sys, time
from pathlib import Path
from models import make_engine
from intake.producer import EnqueueRequest, enqueue_document
from config import Settings
from intake.storage import FilesystemDocumentStore

url, data_dir, pdf, start_at = sys.argv[1:5]
key = sys.argv[5] if len(sys.argv) > 5 else None
settings = Settings(data_dir=data_dir, database_url=url, tenant_id="4028868", _env_file=None)
engine = make_engine(url)

request = EnqueueRequest(
    document=Path(pdf), person_code="P1", document_type="diploma", idempotency_key=key
)
time.sleep(max(0.0, float(start_at) - time.time()))
result = enqueue_document(
    request,
    engine=engine,
    store=FilesystemDocumentStore(settings.storage_dir),
    settings=settings,
)
print(result.job.id, result.created)
"""

TOKEN_SCRIPT = """
import os, sys, time
from datetime import timedelta
from api_client import AccessToken
from models import make_engine, utcnow
from scheduling.token_cache import DatabaseTokenCache

url, counter, start_at = sys.argv[1:4]
engine = make_engine(url)

def fetch():
    with open(counter, "a") as handle:
        handle.write(f"{os.getpid()}\\n")
    time.sleep(0.5)
    return AccessToken("fleet-token", "Bearer", "s", utcnow() + timedelta(hours=1))

cache = DatabaseTokenCache(engine, owner=f"proc-{os.getpid()}", poll_interval=0.02)
time.sleep(max(0.0, float(start_at) - time.time()))
print(cache.get_or_fetch("tenant-key", fetch, 300).access_token)
"""


def finish(processes: list[subprocess.Popen[str]]) -> list[str]:
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs.append(out.strip())
    return outputs


@pytest.mark.parametrize(
    "keys",
    [[[]] * 4, [[], ["evt-1"], [], ["evt-2"], ["evt-1"], []]],
    ids=["no-keys", "with-and-without-keys"],
)
def test_producer_processes_racing_make_one_job(
    cli: Cli,
    tmp_path: Path,
    python_script: Callable[..., subprocess.Popen[str]],
    keys: list[list[str]],
) -> None:
    """Processes enqueuing one document at once: plain repeats, or the same document from
    an LMS event (keyed) and a backfill (unkeyed)."""
    pdf = tmp_path / "race.pdf"
    make_pdf(pdf, text="race between processes")
    start_at = str(time.time() + START_DELAY)
    processes = [
        python_script(ENQUEUE_SCRIPT, cli.database_url, str(cli.data_dir), str(pdf), start_at, *key)
        for key in keys
    ]
    results = [line.split() for line in finish(processes)]
    assert len({job_id for job_id, _ in results}) == 1
    assert [created for _, created in results].count("True") == 1
    with Session(cli.engine) as session:
        assert session.exec(select(func.count()).select_from(UploadJob)).one() == 1
        reasons = session.exec(select(JobEvent.reason).order_by(col(JobEvent.id))).all()
    assert reasons[0] == "enqueued by library"
    assert set(reasons[1:]) <= {
        "enqueued again by library with key evt-1: same document",
        "enqueued again by library with key evt-2: same document",
        "enqueued again by library without a key: same document",
    }


def test_two_cli_enqueues_at_once_make_one_job(cli: Cli, tmp_path: Path) -> None:
    pdf = tmp_path / "cli-race.pdf"
    make_pdf(pdf, text="cli race")
    from tests.plugins.cli_fixtures import YFDOCS

    processes = [
        subprocess.Popen(
            [YFDOCS, "enqueue", str(pdf), "--person", "P1", "--type", "diploma"],
            cwd=cli.cwd,
            env=cli.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    ids = finish(processes)
    assert ids[0] == ids[1]
    assert len(cli.json("status")) == 1


def test_token_cache_processes_fetch_once(
    cli: Cli, tmp_path: Path, python_script: Callable[..., subprocess.Popen[str]]
) -> None:
    counter = tmp_path / "fetches.txt"
    start_at = str(time.time() + START_DELAY)
    processes = [
        python_script(TOKEN_SCRIPT, cli.database_url, str(counter), start_at) for _ in range(3)
    ]
    assert finish(processes) == ["fleet-token"] * 3
    assert len(counter.read_text().splitlines()) == 1
    with Session(cli.engine) as session:
        entry = session.get(TokenCacheEntry, "tenant-key")
        assert entry is not None
        assert entry.fetching_until is None
        assert entry.fetcher is None


def test_token_cache_threads_fetch_once(db_engine: Engine) -> None:
    calls: list[int] = []
    barrier = threading.Barrier(6)
    got: list[str] = []

    def fetch() -> AccessToken:
        calls.append(1)
        time.sleep(0.3)
        return AccessToken("t", "Bearer", "s", utcnow() + timedelta(hours=1))

    def use() -> None:
        cache = DatabaseTokenCache(db_engine, owner="thread", poll_interval=0.02)
        barrier.wait()
        got.append(cache.get_or_fetch("threads", fetch, 300).access_token)

    threads = [threading.Thread(target=use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert got == ["t"] * 6


def test_lost_insert_race_returns_the_winner(
    db_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key look-up that misses (the winner not yet seen) still ends in the winner's job:
    the insert finds it under the content's lock. Force the look-up to miss once."""
    import intake.producer as producer_module
    from config import Settings
    from intake.producer import EnqueueRequest, enqueue_document
    from intake.storage import FilesystemDocumentStore

    settings = Settings(data_dir=tmp_path, tenant_id="4028868", _env_file=None)  # type: ignore[call-arg]
    store = FilesystemDocumentStore(tmp_path / "documents")
    request = EnqueueRequest(
        document=make_pdf(text="lost"), person_code="P", document_type="diploma"
    )
    winner = enqueue_document(request, engine=db_engine, store=store, settings=settings)
    real = producer_module._existing
    misses = iter([True])
    monkeypatch.setattr(
        producer_module,
        "_existing",
        lambda engine, document: None if next(misses, False) else real(engine, document),
    )
    loser = enqueue_document(request, engine=db_engine, store=store, settings=settings)
    assert not loser.created
    assert loser.job.id == winner.job.id
