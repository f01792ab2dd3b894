"""A fleet that shares no folder: a producer with one data dir and two `yfdocs worker`
processes with data dirs of their own, on PostgreSQL and a real broker (Redis), keeping the
PDFs in the postgres store and then in the S3 store, against the real sandbox.

Every document is delivered, by both workers, with the bytes that were enqueued; a
document that has gone from the store fails its job with a clear reason; and no data dir
holds a single PDF.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from messaging import UPLOAD_TASK
from models import JobState
from sandbox import SandboxServer
from tests.plugins.database_fixtures import (
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
)
from tests.plugins.s3_fixtures import S3Bucket
from tests.plugins.worker_fixtures import ServiceUnderTest, purge_broker, service_variables

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

DOCUMENTS = 8


@pytest.fixture
def fleet_database() -> Iterator[str]:
    server = postgres_server_url()
    url = create_postgres_database(server)
    yield url
    drop_postgres_database(server, url)


def _pdfs(root: Path) -> list[Path]:
    return sorted(root.rglob("*.pdf")) if root.exists() else []


@pytest.mark.parametrize("store_kind", ["postgres", pytest.param("s3", marks=pytest.mark.s3)])
def test_two_workers_with_their_own_data_dirs_deliver_every_document(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sandbox: SandboxServer,
    fleet_database: str,
    monkeypatch: pytest.MonkeyPatch,
    store_kind: str,
) -> None:
    aws: dict[str, str] = {}
    store = "postgres"
    if store_kind == "s3":
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        aws = bucket.server.environment
        store = bucket.location_text
        for name, value in aws.items():  # the producer, in this process
            monkeypatch.setenv(name, value)
    producer_dir = tmp_path / "producer"
    variables = service_variables(producer_dir, sandbox, "redis")
    variables |= {"YFDOCS_DATABASE_URL": fleet_database, "YFDOCS_DOCUMENT_STORE": store}
    service = ServiceUnderTest(sandbox, producer_dir, variables)
    purge_broker(service.settings)
    try:
        lost = service.enqueue("191166", title="a PDF that goes missing")
        assert service.store.delete(service.job(lost).storage_key)
        job_ids = [service.enqueue(title=f"fleet document {n}") for n in range(DOCUMENTS)]
        sent = {hashlib.sha256(_read(service, job_id)).hexdigest() for job_id in job_ids}

        worker_dirs = [tmp_path / f"worker-{n}" for n in range(2)]
        workers = [
            service.start_worker(
                beat=n == 0,
                concurrency=1,
                environment={"YFDOCS_DATA_DIR": str(folder), **aws},
            )
            for n, folder in enumerate(worker_dirs)
        ]
        jobs = service.wait_for_end([lost, *job_ids], timeout=120)

        failed = jobs.pop(lost)
        assert failed.job_state is JobState.FAILED
        assert failed.last_error == f"stored document {failed.storage_key} is missing"
        errors = {job.id: job.last_error for job in jobs.values() if job.last_error}
        assert {job.state for job in jobs.values()} == {JobState.COMPLETE.value}, errors
        delivered = {
            part["sha256"]
            for entry in service.accepted_uploads()
            for part in entry["multipart"]["parts"]
            if part.get("filename")
        }
        assert delivered == sent
        for worker in workers:
            assert f"{UPLOAD_TASK}[" in _log(worker.log_path), "both workers uploaded"
        for folder in [producer_dir, *worker_dirs]:
            assert _pdfs(folder) == [], f"{folder} holds PDFs: the fleet shared a folder"
    finally:
        service.close()


def _read(service: ServiceUnderTest, job_id: str) -> bytes:
    with service.store.open(service.job(job_id).storage_key) as stream:
        return stream.read()


def _log(path: Path) -> str:
    deadline = time.monotonic() + 5
    text = ""
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if text:
            break
        time.sleep(0.2)
    return text
