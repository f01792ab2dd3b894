"""One contract, every document store: filesystem, PostgreSQL (the real server) and S3 (moto's
real S3 server on loopback), each test run against each backend.

The promises are `intake.storage`'s: content-addressed keys, stored once, a put checks
before it writes, complete before it returns and never seen half-written, read back as a
seekable stream of slices (and uploaded from one), `DocumentMissing` for what is gone, and
retention's race-free rule with a producer storing the same bytes at the same moment. The
jobs live in a fresh PostgreSQL database for every backend, as in a fleet (and, for the
race, also in the embedded SQLite beside the filesystem store).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from api_client import DocumentType, Timeouts, YouforceClient
from config import Settings
from intake.producer import EnqueueRequest, enqueue_document
from intake.storage import (
    DocumentMissing,
    DocumentStore,
    FilesystemDocumentStore,
    StorageKeyError,
    storage_key,
)
from intake.stores import PostgresDocumentStore, S3DocumentStore
from models import JobState, UploadJob, change_state, utcnow
from models import jobs as job_table
from sandbox import SandboxServer
from tests.pdf_samples import make_pdf
from tests.plugins.database_fixtures import migrated, wipe_tables
from tests.plugins.s3_fixtures import S3Bucket

pytestmark = pytest.mark.postgres

TENANT = "4028868"
FOUR_MB = 4_000_000


@dataclass
class Backend:
    """A store under test, and what the test needs to see behind it."""

    name: str
    store: DocumentStore
    engine: Engine
    copies: Callable[[], int]
    writes: Callable[[], int]


def _filesystem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, Any]:
    root = tmp_path / "documents"
    replaced = [0]
    real_replace = os.replace

    def counting_replace(src: Any, dst: Any) -> None:
        replaced[0] += 1
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", counting_replace)
    return (
        FilesystemDocumentStore(root),
        lambda: len(list(root.rglob("*.pdf"))) if root.exists() else 0,
        lambda: replaced[0],
    )


def _postgres(engine: Engine, request: pytest.FixtureRequest) -> tuple[Any, Any, Any]:
    inserts = [0]

    def count_inserts(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO DOCUMENT_BLOBS"):
            inserts[0] += 1

    event.listen(engine, "before_cursor_execute", count_inserts)
    request.addfinalizer(lambda: event.remove(engine, "before_cursor_execute", count_inserts))

    def copies() -> int:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM document_blobs")).scalar())

    return PostgresDocumentStore(engine), copies, lambda: inserts[0]


def _s3(bucket: S3Bucket) -> tuple[Any, Any, Any]:
    client = bucket.server.client()
    puts = [0]

    def count_put(**_kwargs: Any) -> None:
        puts[0] += 1

    client.meta.events.register("before-call.s3.PutObject", count_put)
    return S3DocumentStore(bucket.name, bucket.prefix, client), bucket.object_count, lambda: puts[0]


@pytest.fixture(params=["filesystem", "postgres", pytest.param("s3", marks=pytest.mark.s3)])
def backend(
    request: pytest.FixtureRequest,
    postgres_engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Backend:
    wipe_tables(postgres_engine)
    if request.param == "filesystem":
        store, copies, writes = _filesystem(tmp_path, monkeypatch)
    elif request.param == "postgres":
        store, copies, writes = _postgres(postgres_engine, request)
    else:
        store, copies, writes = _s3(request.getfixturevalue("s3_bucket"))
    return Backend(request.param, store, postgres_engine, copies, writes)


def _document(label: str, size: int | None = None) -> bytes:
    return make_pdf(text=f"{label} {os.urandom(8).hex()}", pad_to=size)


def test_a_put_is_content_addressed_and_reads_back(backend: Backend) -> None:
    data = _document("addressed")
    digest = hashlib.sha256(data).hexdigest()
    key = backend.store.put(data)
    assert key == storage_key(digest) == f"{digest[:2]}/{digest[2:4]}/{digest}.pdf"
    assert backend.store.exists(key)
    with backend.store.open(key) as stream:
        assert stream.read() == data


def test_the_same_bytes_are_stored_once_and_the_second_put_writes_nothing(
    backend: Backend, tmp_path: Path
) -> None:
    data = _document("once")
    source = tmp_path / "in.pdf"
    source.write_bytes(data)
    first = backend.store.put(data)
    writes = backend.writes()
    assert backend.store.put(source) == first
    assert backend.store.put(data) == first
    assert backend.writes() == writes, "the store was asked first: nothing sent again"
    assert backend.copies() == 1


def test_concurrent_puts_of_the_same_bytes_leave_one_complete_copy(backend: Backend) -> None:
    data = _document("raced", 1_500_000)
    keys: list[str] = []
    barrier = threading.Barrier(6)

    def put() -> None:
        barrier.wait(timeout=10)
        keys.append(backend.store.put(data))

    threads = [threading.Thread(target=put) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(keys) == 6
    assert len(set(keys)) == 1
    assert backend.copies() == 1
    with backend.store.open(keys[0]) as stream:
        assert stream.read() == data


def test_a_reader_never_sees_a_document_half_written(backend: Backend) -> None:
    data = _document("whole", FOUR_MB)
    key = storage_key(hashlib.sha256(data).hexdigest())
    seen: list[bytes] = []
    writer = threading.Thread(target=backend.store.put, args=(data,))
    writer.start()
    while writer.is_alive() or not seen:
        # Asked before the read: the put may return while a read that began before its
        # commit still looks, and that read rightly finds nothing.
        writing = writer.is_alive()
        try:
            with backend.store.open(key) as stream:
                seen.append(stream.read())
        except DocumentMissing:
            assert writing, "the put had returned, so the document must be there"
    writer.join()
    assert all(copy == data for copy in seen), "every read got the whole document"


def test_a_document_is_read_as_a_seekable_stream_in_slices(backend: Backend) -> None:
    data = _document("sliced", 3 * 1024 * 1024 + 11)
    key = backend.store.put(data)
    with backend.store.open(key) as stream:
        assert stream.seekable()
        pieces = []
        while piece := stream.read(65536):
            assert len(piece) <= 65536
            pieces.append(piece)
        assert b"".join(pieces) == data
        assert stream.tell() == len(data)
        assert stream.seek(0) == 0
        assert stream.read(100) == data[:100]
        stream.seek(-10, io.SEEK_END)
        assert stream.read() == data[-10:]
        stream.seek(2_000_000)
        assert stream.read(5) == data[2_000_000:2_000_005]


def test_what_is_gone_raises_document_missing(backend: Backend) -> None:
    key = backend.store.put(_document("gone"))
    assert backend.store.delete(key)
    assert not backend.store.delete(key), "gone already: no error, and says so"
    assert not backend.store.exists(key)
    with pytest.raises(DocumentMissing, match=f"^stored document {key} is missing$"):
        backend.store.open(key)
    never = storage_key("f" * 64)
    assert not backend.store.exists(never)
    with pytest.raises(DocumentMissing):
        backend.store.open(never)


def test_a_reader_gets_the_whole_document_or_document_missing(backend: Backend) -> None:
    data = _document("vanishing", 3 * 1024 * 1024)
    key = backend.store.put(data)
    with backend.store.open(key) as stream:
        first = stream.read(65536)
        backend.store.delete(key)
        try:
            rest = stream.read()
        except DocumentMissing:
            return  # a store that reads on demand notices
    assert first + rest == data  # a local file stays readable once open: still whole


@pytest.mark.parametrize(
    "key", ["../../etc/passwd", "ab/cd/" + "0" * 64 + ".pdf", "/abs/path.pdf", "x.pdf"]
)
def test_keys_a_store_never_hands_out_are_refused(backend: Backend, key: str) -> None:
    for operation in (backend.store.open, backend.store.exists, backend.store.delete):
        with pytest.raises(StorageKeyError):
            operation(key)


def test_an_upload_streams_the_document_from_the_store(
    backend: Backend, sandbox: SandboxServer
) -> None:
    data = _document("uploaded", 2_500_000)
    key = backend.store.put(data)
    with (
        YouforceClient(
            api_url=sandbox.url,
            token_url=sandbox.token_url,
            client_id="sandbox-client",
            client_secret="sandbox-secret",
            timeouts=Timeouts(connect=2, read=10),
        ) as client,
        backend.store.open(key) as stream,
    ):
        receipt = client.upload_document(
            TENANT,
            "191166",
            DocumentType.CERTIFICATE,
            stream,
            description="from the store",
            filename="stored.pdf",
            size=len(data),
        )
    assert receipt.ticket_id
    entries = requests.get(f"{sandbox.url}/_sandbox/requests", timeout=10).json()["requests"]
    [upload] = [entry for entry in entries if "/documents/" in entry["path"]]
    assert upload["status"] == 200
    [part] = [part for part in upload["multipart"]["parts"] if part.get("filename")]
    assert part["sha256"] == hashlib.sha256(data).hexdigest()


def _enqueue(
    engine: Engine, store: DocumentStore, pdf: bytes, person: str, key: str | None = None
) -> UploadJob:
    return enqueue_document(
        EnqueueRequest(
            document=pdf, person_code=person, document_type="certificate", idempotency_key=key
        ),
        engine=engine,
        store=store,
        settings=Settings(data_dir=Path("unused"), tenant_id=TENANT, _env_file=None),  # type: ignore[call-arg]
    ).job


def race_retention_against_a_producer(engine: Engine, store: DocumentStore) -> None:
    """Retention decides a finished job's PDF is unneeded while a producer enqueues the same
    bytes for a new job: the check, the delete and the marks are one step under the key's
    lock, so the new job's PDF is always there afterwards (issue: retention race)."""
    pdf = make_pdf(text=f"the same certificate twice {os.urandom(4).hex()}")
    old = _enqueue(engine, store, pdf, "10001")
    with job_table.locked_job(engine, old.id) as (session, row):
        assert row is not None
        change_state(
            session, row, JobState.FAILED, reason="test", now=utcnow() - timedelta(days=40)
        )
    in_delete = threading.Event()
    producer_done = threading.Event()
    new_job: list[UploadJob] = []

    def delete_slowly(key: str) -> bool:
        # Retention has decided the bytes are unneeded; a producer now stores them again.
        in_delete.set()
        producer_done.wait(timeout=1.0)  # without the lock it finishes meanwhile
        return store.delete(key)

    def produce() -> None:
        in_delete.wait(timeout=10)
        new_job.append(_enqueue(engine, store, pdf, "20002"))
        producer_done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    deleted = job_table.delete_unneeded_documents(
        engine, cutoff=utcnow() - timedelta(days=30), now=utcnow(), limit=10, delete=delete_slowly
    )
    producer.join(timeout=30)

    assert not producer.is_alive()
    assert deleted == 1
    [job] = new_job
    assert job.storage_key == old.storage_key
    assert store.exists(job.storage_key), "the new job's PDF is there to upload"
    assert job_table.find_job(engine, old.id).document_deleted_at is not None
    assert job_table.find_job(engine, job.id).document_deleted_at is None


def test_a_repeat_under_another_key_after_retention_stores_no_copy_no_job_owns(
    backend: Backend,
) -> None:
    """The same content under another key is the job already there (`models.jobs`): its
    bytes are not stored again, on any store, even once retention has deleted the first
    copy (a copy then would belong to no job and never be deleted)."""
    pdf = _document("sent once")
    first = _enqueue(backend.engine, backend.store, pdf, "10001", key="lms-event-1")
    with job_table.locked_job(backend.engine, first.id) as (session, row):
        assert row is not None
        change_state(
            session, row, JobState.FAILED, reason="test", now=utcnow() - timedelta(days=40)
        )
    deleted = job_table.delete_unneeded_documents(
        backend.engine,
        cutoff=utcnow() - timedelta(days=30),
        now=utcnow(),
        limit=10,
        delete=backend.store.delete,
    )
    assert deleted == 1
    assert backend.copies() == 0
    writes = backend.writes()

    again = _enqueue(backend.engine, backend.store, pdf, "10001", key="lms-event-2")

    assert again.id == first.id
    assert backend.writes() == writes, "nothing written for the repeat"
    assert backend.copies() == 0
    assert not backend.store.exists(first.storage_key)


def test_retention_and_a_producer_storing_the_same_bytes_keep_the_new_jobs_pdf(
    backend: Backend,
) -> None:
    race_retention_against_a_producer(backend.engine, backend.store)


def test_the_same_race_on_the_embedded_database(tmp_path: Path) -> None:
    with migrated(f"sqlite:///{tmp_path / 'yfdocs.sqlite3'}") as engine:
        race_retention_against_a_producer(engine, FilesystemDocumentStore(tmp_path / "docs"))
