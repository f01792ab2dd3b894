"""Alembic from an empty database to head on each kind of database (a fresh one here)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from models import make_engine, migrate

TABLES = {"upload_jobs", "job_events", "token_cache", "api_calls", "alembic_version"}


def test_empty_to_head_and_again(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == set()
        migrate(engine)
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) == TABLES
        indexes = {index["name"] for index in inspector.get_indexes("upload_jobs")}
        assert "ix_upload_jobs_state_published_at" in indexes
        assert "ix_upload_jobs_state_next_poll_at" in indexes
        uniques = inspector.get_unique_constraints("upload_jobs")
        assert any(u["column_names"] == ["idempotency_key"] for u in uniques)
        with engine.connect() as connection:
            first = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        migrate(engine)
        with engine.connect() as connection:
            second = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert first == second
        assert len(first) == 1
    finally:
        engine.dispose()
