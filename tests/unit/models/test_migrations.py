"""Alembic from an empty SQLite file to head: tables, indexes, and a second run is a no-op."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from models import make_engine, migrate
from models.db import alembic_config

EXPECTED_TABLES = {
    "upload_jobs",
    "job_events",
    "token_cache",
    "api_calls",
    "governor_slots",
    "governor_state",
    "token_grants",
    "dispatcher_lease",
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
