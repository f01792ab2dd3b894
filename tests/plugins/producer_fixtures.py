"""The producer's collaborators for unit tests: SQLite and a store in tmp (no broker: the
producer never publishes)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from config import Settings
from intake.producer import EnqueueRequest, EnqueueResult, enqueue_document
from intake.storage import FilesystemDocumentStore
from models import JobEvent, UploadJob, make_engine, migrate

TENANT = "4028868"


@dataclass
class Producer:
    """Everything `enqueue_document` needs, bundled for the tests."""

    engine: Engine
    store: FilesystemDocumentStore
    settings: Settings

    def enqueue(self, request: EnqueueRequest) -> EnqueueResult:
        return enqueue_document(
            request,
            engine=self.engine,
            store=self.store,
            settings=self.settings,
        )

    def job_count(self) -> int:
        with Session(self.engine) as session:
            return session.exec(select(func.count()).select_from(UploadJob)).one()

    def event_count(self) -> int:
        with Session(self.engine) as session:
            return session.exec(select(func.count()).select_from(JobEvent)).one()

    def stored_files(self) -> list[Path]:
        if not self.store.root.exists():
            return []
        return [path for path in self.store.root.rglob("*") if path.is_file()]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", tenant_id=TENANT, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def producer(settings: Settings) -> Iterator[Producer]:
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    yield Producer(
        engine=engine,
        store=FilesystemDocumentStore(settings.storage_dir),
        settings=settings,
    )
    engine.dispose()
