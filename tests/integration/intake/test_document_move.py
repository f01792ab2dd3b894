"""The fleet's store as the database names it, and `move_documents` between real backends:
every PDF a job needs copied and verified, the switch recorded, safe to interrupt and to run
again, with producers, readers and retention working throughout."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from config import Settings, StoreLocation
from intake.producer import EnqueueRequest, enqueue_document
from intake.storage import DocumentMissing, DocumentStore
from intake.stores import (
    ActiveDocumentStore,
    MoveFailed,
    MoveRefused,
    StoreBuilder,
    move_documents,
)
from models import JobState, UploadJob, change_state, utcnow
from models import document_store as choice
from models import jobs as job_table
from tests.pdf_samples import make_pdf
from tests.plugins.database_fixtures import migrated, wipe_tables
from tests.plugins.s3_fixtures import S3Bucket

pytestmark = pytest.mark.postgres

TENANT = "4028868"


@dataclass
class Fleet:
    """Processes of one deployment: the same database and data dir, their own settings."""

    url: str
    engine: Engine
    data_dir: Path
    request: pytest.FixtureRequest

    def location(self, kind: str) -> str:
        if kind == "s3":
            bucket: S3Bucket = self.request.getfixturevalue("s3_bucket")
            return bucket.location_text
        return kind

    def settings(self, store: str) -> Settings:
        return Settings(  # type: ignore[call-arg]
            data_dir=self.data_dir,
            database_url=self.url,
            tenant_id=TENANT,
            document_store=store,
            _env_file=None,
        )

    def builder(self, store: str) -> StoreBuilder:
        def s3_client() -> Any:
            bucket: S3Bucket = self.request.getfixturevalue("s3_bucket")
            return bucket.server.client()

        return StoreBuilder(self.settings(store), self.engine, s3_client=s3_client)

    def process(self, store: str) -> ActiveDocumentStore:
        return ActiveDocumentStore(self.builder(store))

    def concrete(self, store: str) -> DocumentStore:
        return self.builder(store).store(StoreLocation.parse(store))

    def enqueue(self, store: DocumentStore, person: str, text: str) -> UploadJob:
        return enqueue_document(
            EnqueueRequest(make_pdf(text=text), person_code=person, document_type="diploma"),
            engine=self.engine,
            store=store,
            settings=self.settings("postgres"),
        ).job


@pytest.fixture
def fleet(
    postgres_url: str, postgres_engine: Engine, tmp_path: Path, request: pytest.FixtureRequest
) -> Fleet:
    wipe_tables(postgres_engine)
    return Fleet(postgres_url, postgres_engine, tmp_path / "data", request)


def _retired(fleet: Fleet, job: UploadJob) -> None:
    """The job finished long ago and retention deleted its PDF."""
    with job_table.locked_job(fleet.engine, job.id) as (session, row):
        assert row is not None
        change_state(session, row, JobState.FAILED, reason="t", now=utcnow() - timedelta(days=40))
    job_table.delete_unneeded_documents(
        fleet.engine,
        cutoff=utcnow() - timedelta(days=30),
        now=utcnow(),
        limit=10,
        delete=fleet.process("postgres").delete,
    )


def _read(store: DocumentStore, key: str) -> bytes:
    with store.open(key) as stream:
        return stream.read()


def test_the_first_put_records_the_store_and_every_process_follows_the_database(
    fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    producer = fleet.process("filesystem")
    job = fleet.enqueue(producer, "10001", "recorded")
    state = choice.read_store_state(fleet.engine)
    assert state is not None
    assert state.active == "filesystem"
    other = fleet.process("postgres")  # a process configured otherwise
    with caplog.at_level(logging.WARNING, logger="intake.stores.active"):
        assert _read(other, job.storage_key) == _read(producer, job.storage_key)
        other.exists(job.storage_key)
    [warning] = [r.getMessage() for r in caplog.records]
    assert "YFDOCS_DOCUMENT_STORE is postgres, but the database names filesystem" in warning
    assert "`yfdocs documents move --to postgres`" in warning


MOVES = [
    pytest.param("filesystem", "postgres", id="filesystem-to-postgres"),
    pytest.param("postgres", "s3", id="postgres-to-s3", marks=pytest.mark.s3),
    pytest.param("s3", "filesystem", id="s3-to-filesystem", marks=pytest.mark.s3),
]


@pytest.mark.parametrize(("source_kind", "target_kind"), MOVES)
def test_a_move_copies_what_jobs_need_switches_and_is_a_no_op_when_run_again(
    fleet: Fleet, source_kind: str, target_kind: str
) -> None:
    source, target = fleet.location(source_kind), fleet.location(target_kind)
    producer = fleet.process(source)
    jobs = [fleet.enqueue(producer, f"1000{n}", f"move {n}") for n in range(4)]
    shared = fleet.enqueue(producer, "20001", "move 0")  # the same bytes as jobs[0]
    retired = fleet.enqueue(producer, "30001", "retired long ago")
    _retired(fleet, retired)
    lines: list[str] = []

    report = move_documents(
        fleet.settings(source), fleet.engine, StoreLocation.parse(target),
        builder=fleet.builder(source), progress=lines.append,
    )  # fmt: skip

    assert (report.source, report.target) == (source, target)
    assert (report.copied, report.present, report.missing) == (4, 0, [])
    assert shared.storage_key == jobs[0].storage_key
    state = choice.read_store_state(fleet.engine)
    assert state is not None
    assert (state.active, state.move_source, state.move_target) == (target, None, None)
    moved_to = fleet.concrete(target)
    for job in jobs:
        assert _read(moved_to, job.storage_key) == _read(fleet.concrete(source), job.storage_key)
    assert not moved_to.exists(retired.storage_key), "what retention deleted stays deleted"
    newer = fleet.enqueue(fleet.process(source), "40001", "after the move")
    assert moved_to.exists(newer.storage_key), "a process configured with the old store follows"

    again = move_documents(
        fleet.settings(target), fleet.engine, StoreLocation.parse(target),
        builder=fleet.builder(target),
    )  # fmt: skip
    assert again.already_there
    assert (again.copied, again.present, again.missing) == (0, 5, [])


class _AroundPut:
    """A store whose puts run `before` first and `after` once done: a failure or a switch
    of the fleet's store at an exact moment."""

    def __init__(
        self,
        inner: DocumentStore,
        before: Callable[[], None] = lambda: None,
        after: Callable[[], None] = lambda: None,
    ) -> None:
        self.inner = inner
        self.before = before
        self.after = after

    def put(self, source: bytes | Path) -> str:
        self.before()
        key = self.inner.put(source)
        self.after()
        return key

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _fails_after(budget: int) -> Callable[[], None]:
    left = [budget]

    def spend() -> None:
        if left[0] <= 0:
            raise OSError("the object store went away")
        left[0] -= 1

    return spend


def test_an_interrupted_move_leaves_the_fleet_working_and_continues_when_run_again(
    fleet: Fleet,
) -> None:
    producer = fleet.process("filesystem")
    jobs = [fleet.enqueue(producer, f"1000{n}", f"interrupted {n}") for n in range(3)]
    builder = fleet.builder("filesystem")
    target = StoreLocation("postgres")
    builder._stores[target] = _AroundPut(builder.store(target), before=_fails_after(1))  # type: ignore[assignment]

    with pytest.raises(MoveFailed, match="the fleet still uses filesystem: run the move again"):
        move_documents(fleet.settings("filesystem"), fleet.engine, target, builder=builder)

    state = choice.read_store_state(fleet.engine)
    assert state is not None
    assert (state.active, state.other) == ("filesystem", "postgres")
    during = fleet.enqueue(producer, "50001", "while the move is unfinished")
    assert fleet.concrete("filesystem").exists(during.storage_key), "new PDFs: still the source"
    for job in [*jobs, during]:
        assert _read(producer, job.storage_key)
    with pytest.raises(MoveRefused, match=r"unfinished: run `yfdocs documents move --to postgres`"):
        move_documents(fleet.settings("filesystem"), fleet.engine, StoreLocation("filesystem"))

    report = move_documents(fleet.settings("filesystem"), fleet.engine, target)
    assert (report.copied, report.present) == (3, 1)
    for job in [*jobs, during]:
        assert fleet.concrete("postgres").exists(job.storage_key)


def test_during_a_move_reads_fall_back_and_retention_deletes_from_both(fleet: Fleet) -> None:
    now = utcnow()
    fleet.process("filesystem").put(b"%PDF-1.4 claim")  # records filesystem
    assert choice.begin_move(fleet.engine, source="filesystem", target="postgres", now=now)
    assert choice.switch_to_move_target(
        fleet.engine, source="filesystem", target="postgres", now=now
    )
    key = fleet.concrete("filesystem").put(b"%PDF-1.4 only in the source")
    both = fleet.concrete("filesystem").put(b"%PDF-1.4 in both")
    fleet.concrete("postgres").put(b"%PDF-1.4 in both")
    process = fleet.process("postgres")

    assert _read(process, key) == b"%PDF-1.4 only in the source"
    assert not process.exists(key), "exists asks the active store: the producer re-puts there"
    assert process.delete(both)
    for store in ("filesystem", "postgres"):
        assert not fleet.concrete(store).exists(both)
    choice.finish_move(fleet.engine, source="filesystem", target="postgres", now=now)
    with pytest.raises(DocumentMissing):
        process.open(key)


def test_a_pdf_stored_in_the_source_just_before_the_switch_reaches_the_target(
    fleet: Fleet,
) -> None:
    producer = fleet.process("filesystem")
    producer.put(b"%PDF-1.4 claim")
    assert choice.begin_move(fleet.engine, source="filesystem", target="postgres", now=utcnow())
    switched: list[bool] = []

    def switch_once() -> None:
        if not switched:
            switched.append(
                choice.switch_to_move_target(
                    fleet.engine, source="filesystem", target="postgres", now=utcnow()
                )
            )

    racing = _AroundPut(producer, after=switch_once)
    job = fleet.enqueue(racing, "60001", "stored just before the switch")  # type: ignore[arg-type]
    assert switched == [True]
    assert fleet.concrete("filesystem").exists(job.storage_key)
    assert fleet.concrete("postgres").exists(job.storage_key), "stored again after the commit"


def test_a_move_that_cannot_work_is_refused_before_anything_changes(
    fleet: Fleet, tmp_path: Path
) -> None:
    sqlite = Settings(data_dir=tmp_path / "embedded", _env_file=None)  # type: ignore[call-arg]
    with migrated(sqlite.resolved_database_url) as sqlite_engine:
        with pytest.raises(MoveRefused, match="needs the database on PostgreSQL"):
            move_documents(sqlite, sqlite_engine, StoreLocation("postgres"))
        assert choice.read_store_state(sqlite_engine) is None


@pytest.mark.s3
def test_a_bucket_that_is_not_there_is_refused(fleet: Fleet, s3_bucket: S3Bucket) -> None:
    fleet.enqueue(fleet.process("postgres"), "70001", "stays")
    missing = StoreLocation("s3", f"{s3_bucket.name}-absent", "")
    with pytest.raises(MoveRefused, match=f"cannot reach the document store {missing}"):
        move_documents(
            fleet.settings("postgres"), fleet.engine, missing, builder=fleet.builder("postgres")
        )
    state = choice.read_store_state(fleet.engine)
    assert state is not None
    assert (state.active, state.other) == ("postgres", None)
