"""Retention and a producer storing the same bytes at the same moment, on SQLite and on
PostgreSQL: the check, the delete and the marks are one step, so the new job's PDF is
always there afterwards (issue: retention race on PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from config import Settings
from intake.producer import EnqueueRequest, enqueue_document
from intake.storage import FilesystemDocumentStore
from models import JobState, UploadJob, change_state, utcnow
from models import jobs as job_table
from tests.pdf_samples import make_pdf

TENANT = "4028868"


def _finished_long_ago(
    engine: Engine, settings: Settings, store: FilesystemDocumentStore, pdf: bytes
) -> UploadJob:
    job = enqueue_document(
        EnqueueRequest(
            document=pdf, person_code="10001", document_type="certificate", tenant_id=TENANT
        ),
        engine=engine,
        store=store,
        settings=settings,
    ).job
    with job_table.locked_job(engine, job.id) as (session, row):
        assert row is not None
        change_state(
            session, row, JobState.FAILED, reason="test", now=utcnow() - timedelta(days=40)
        )
    return job


def test_a_producer_storing_the_same_bytes_during_retention_keeps_its_pdf(
    db_engine: Engine, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, tenant_id=TENANT, _env_file=None)  # type: ignore[call-arg]
    store = FilesystemDocumentStore(settings.storage_dir)
    pdf = make_pdf(text="the same certificate twice")
    old = _finished_long_ago(db_engine, settings, store, pdf)
    in_delete = threading.Event()
    producer_done = threading.Event()
    new_job: list[UploadJob] = []

    def delete_slowly(key: str) -> bool:
        # Retention has decided the bytes are unneeded; a producer now stores them again.
        in_delete.set()
        producer_done.wait(timeout=1.0)  # without the lock it finishes meanwhile
        existed = store.exists(key)
        store.delete(key)
        return existed

    def produce() -> None:
        in_delete.wait(timeout=10)
        result = enqueue_document(
            EnqueueRequest(
                document=pdf, person_code="20002", document_type="certificate", tenant_id=TENANT
            ),
            engine=db_engine,
            store=store,
            settings=settings,
        )
        new_job.append(result.job)
        producer_done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    deleted = job_table.delete_unneeded_documents(
        db_engine,
        cutoff=utcnow() - timedelta(days=30),
        now=utcnow(),
        limit=10,
        delete=delete_slowly,
    )
    producer.join(timeout=30)

    assert not producer.is_alive()
    assert deleted == 1
    [job] = new_job
    assert job.storage_key == old.storage_key
    assert store.exists(job.storage_key), "the new job's PDF is there to upload"
    assert job_table.find_job(db_engine, old.id).document_deleted_at is not None
    assert job_table.find_job(db_engine, job.id).document_deleted_at is None
