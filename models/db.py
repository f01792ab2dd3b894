"""Engines, sessions and schema migrations for SQLite (embedded) and PostgreSQL (fleet)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, create_engine

from models.errors import Decision, YfdocsError

__all__ = [
    "SchemaNotReady",
    "current_revision",
    "head_revision",
    "insert_if_missing",
    "make_engine",
    "migrate",
    "require_schema",
    "session_scope",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_SECONDS = 30


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite is set up to be safe with several worker processes.

    SQLite: the file's folder is created, WAL lets readers run beside the writer, and every
    transaction begins IMMEDIATE so that two processes never deadlock while upgrading a
    read lock to a write lock (they queue on the busy timeout instead).
    """
    if url.startswith("sqlite"):
        return _make_sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _make_sqlite_engine(url: str, **kwargs: Any) -> Engine:
    database = url.split(":///", 1)[1] if ":///" in url else ""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_SECONDS)
    connect_args.setdefault("check_same_thread", False)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(engine: Engine | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


MIGRATION_LOCK_ID = 0x79666D6967  # any constant; PostgreSQL advisory locks are per database


class SchemaNotReady(YfdocsError):
    """The database has no yfdocs schema, or an older one than this code needs."""

    decision = Decision.REFUSE


def head_revision() -> str:
    """The newest migration this code knows."""
    head = ScriptDirectory.from_config(alembic_config(None)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database without the schema."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_schema(engine: Engine) -> None:
    """Raise `SchemaNotReady`, naming `yfdocs migrate`, unless the schema is at head.

    Commands that do not migrate by themselves (everything on PostgreSQL) call this first,
    so that an empty or old database gets one clear line instead of a traceback.
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaNotReady("the database has no yfdocs schema yet: run `yfdocs migrate`")
    raise SchemaNotReady(
        f"the database schema is at revision {current}, this yfdocs needs {head}: "
        "run `yfdocs migrate`"
    )


def migrate(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade the schema to `revision` and return the revision reached; idempotent.

    On PostgreSQL an advisory lock makes processes that start together migrate one at a
    time (the later ones find nothing to do); SQLite's BEGIN IMMEDIATE does the same.
    """
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), revision)
        return current_revision(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_ID})")
        try:
            command.upgrade(alembic_config(engine), revision)
        finally:
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})")
            connection.commit()
    return current_revision(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def insert_if_missing(connection: Connection, table: Any, values: dict[str, Any]) -> None:
    """Insert the row unless one with its primary key exists; safe against a racing insert."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(postgresql.insert(table).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        connection.execute(sqlite.insert(table).values(values).on_conflict_do_nothing())
    else:  # another dialect: look first; a lost race shows as an IntegrityError
        key = next(iter(table.primary_key.columns))
        found = connection.execute(select(key).where(key == values[key.name])).first()
        if found is None:
            with contextlib.suppress(IntegrityError), connection.begin_nested():
                connection.execute(insert(table).values(values))
