"""Alembic from an empty database to head on each kind of database (a fresh one here).

The migrated schema must be the one the models declare: every table, column and named
index, so that a model changed without its migration fails here.
"""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (the tables, on the metadata)
from models import make_engine, migrate

TABLES = set(SQLModel.metadata.tables) | {"alembic_version"}


def test_empty_to_head_and_again(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == set()
        migrate(engine)
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) == TABLES
        for name, table in SQLModel.metadata.tables.items():
            columns = {column["name"] for column in inspector.get_columns(name)}
            assert columns == {column.name for column in table.columns}, name
            declared = {index.name for index in table.indexes}
            assert declared <= {index["name"] for index in inspector.get_indexes(name)}, name
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
