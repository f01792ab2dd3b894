"""Databases for tests: an embedded SQLite file, and a fresh PostgreSQL database per module.

`database_url` is parametrised over both; the PostgreSQL case carries the `postgres`
marker and needs YFDOCS_TEST_POSTGRES_URL (a role allowed to CREATE DATABASE). Without it
the test fails in CI (a missing service is a failure, not a skip) and skips locally.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ProgrammingError

from models import make_engine, migrate

__all__ = [
    "create_postgres_database",
    "drop_postgres_database",
    "migrated",
    "postgres_server_url",
    "wipe_tables",
]

POSTGRES_ENV = "YFDOCS_TEST_POSTGRES_URL"
TABLES_CHILD_FIRST = (
    "person_emails",
    "persons",
    "person_syncs",
    "intake_keys",
    "job_events",
    "upload_jobs",
    "token_cache",
    "api_calls",
    "governor_slots",
    "governor_state",
    "document_blobs",
    "document_store_state",
    "token_grants",
    "dispatcher_lease",
    "worker_heartbeats",
)


def postgres_server_url() -> str:
    """The test PostgreSQL URL, or fail (in CI) / skip (locally) when there is none."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    message = f"{POSTGRES_ENV} is not set: start PostgreSQL (scripts/test-services.sh)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def create_postgres_database(server_url: str, prefix: str = "yfdocs_t") -> str:
    """A new, empty database on the server; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(server_url: str, database_url: str) -> None:
    """Drop a test database, ending its connections. An autovacuum worker that happens to
    be in it cannot be ended by a role without pg_signal_backend (test-services.sh grants
    it); it leaves within moments, so the drop is tried again a few times."""
    name = make_url(database_url).database
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        for attempt in range(DROP_ATTEMPTS):
            try:
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                return
            except ProgrammingError:
                if attempt == DROP_ATTEMPTS - 1:
                    raise
                time.sleep(0.5)
    finally:
        admin.dispose()


DROP_ATTEMPTS = 5


def wipe_tables(engine: Engine) -> None:
    """Delete every row, keeping the schema: each test starts from an empty database."""
    with engine.begin() as connection:
        for table in TABLES_CHILD_FIRST:
            connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test module (schema not migrated)."""
    server_url = postgres_server_url()
    url = create_postgres_database(server_url)
    yield url
    drop_postgres_database(server_url, url)


@contextmanager
def migrated(url: str) -> Iterator[Engine]:
    """An engine on `url` with the schema at head, disposed at the end."""
    engine = make_engine(url)
    migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    """An engine on the module's fresh PostgreSQL database, the schema at head."""
    with migrated(postgres_url) as engine:
        yield engine


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database of each kind, fresh for the module, not yet migrated."""
    if request.param == "sqlite":
        folder: Path = tmp_path_factory.mktemp("sqlite")
        yield f"sqlite:///{folder / 'yfdocs.sqlite3'}"
        return
    server_url = postgres_server_url()
    url = create_postgres_database(server_url)
    yield url
    drop_postgres_database(server_url, url)


@pytest.fixture(scope="module")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    """An engine on `database_url` with the schema at head, shared by the module."""
    with migrated(database_url) as engine:
        yield engine


@pytest.fixture
def db_engine(migrated_engine: Engine) -> Engine:
    """The module's migrated engine, emptied before the test."""
    wipe_tables(migrated_engine)
    return migrated_engine
