"""Alembic from an empty SQLite file to head: tables, indexes, and a second run is a no-op."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from models import make_engine, migrate
from models.db import alembic_config
from models.document_store import read_store_state

EXPECTED_TABLES = {
    "upload_jobs",
    "job_events",
    "token_cache",
    "api_calls",
    "governor_slots",
    "governor_state",
    "document_blobs",
    "document_store_state",
    "token_grants",
    "dispatcher_lease",
    "worker_heartbeats",
    "intake_keys",
    "persons",
    "person_emails",
    "person_syncs",
    "alembic_version",
}
EXPECTED_JOB_INDEXES = {
    "ix_upload_jobs_state_next_poll_at",
    "ix_upload_jobs_state_lease_expires_at",
    "ix_upload_jobs_state_published_at",
    "ix_upload_jobs_state_created_at",
    "ix_upload_jobs_retention",
    "ix_upload_jobs_tenant_person",
    "ix_upload_jobs_ticket_id",
}


def test_empty_to_head_creates_tables_indexes_and_unique_key(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh' / 'db.sqlite3'}")
    try:
        assert inspect(engine).get_table_names() == []
        migrate(engine)
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) == EXPECTED_TABLES
        job_indexes = {index["name"] for index in inspector.get_indexes("upload_jobs")}
        assert job_indexes >= EXPECTED_JOB_INDEXES
        uniques = inspector.get_unique_constraints("upload_jobs")
        assert any(u["column_names"] == ["idempotency_key"] for u in uniques)
        assert {i["name"] for i in inspector.get_indexes("job_events")} >= {"ix_job_events_job_id"}
        head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert version == head
    finally:
        engine.dispose()


def test_second_upgrade_is_a_no_op(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        migrate(engine)
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO token_cache (cache_key) VALUES ('kept')"))
        before = inspect(engine).get_table_names()
        migrate(engine)
        engine.dispose()
        assert inspect(engine).get_table_names() == before
        with engine.connect() as connection:
            assert connection.execute(text("SELECT cache_key FROM token_cache")).scalar() == "kept"
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        migrate(engine)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def _job_row(connection: Any, job_id: str, *, deleted: bool) -> None:
    connection.execute(
        text(
            "INSERT INTO upload_jobs (id, tenant_id, person_code, document_type, description,"
            " file_name, original_file_name, size_bytes, sha256, storage_key, source, priority,"
            " idempotency_key, state, attempts, poll_count, created_at, updated_at,"
            " document_deleted_at) VALUES (:id, 't', 'p', 'diploma', 'd', 'f.pdf', 'f.pdf', 1,"
            " 'x', 'k', 'cli', 0, :id, 'complete', 1, 1, '2026-01-01 00:00:00',"
            " '2026-01-01 00:00:00', :deleted)"
        ),
        {"id": job_id, "deleted": "2026-02-01 00:00:00" if deleted else None},
    )


@pytest.mark.parametrize(("stored", "recorded"), [(True, "filesystem"), (False, None)])
def test_0010_records_the_filesystem_store_when_pdfs_were_stored_before_it(
    tmp_path: Path, stored: bool, recorded: str | None
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        migrate(engine, "0007")
        with engine.begin() as connection:
            _job_row(connection, "deleted-long-ago", deleted=True)
            if stored:
                _job_row(connection, "still-stored", deleted=False)
        migrate(engine)
        state = read_store_state(engine)
        assert (state.active if state else None) == recorded
    finally:
        engine.dispose()
