"""The one module that queries the document tables (`document_blobs`, `document_store_state`).

As `models.jobs` does for the job tables: the postgres document store's writes and slice
reads, and the fleet's choice of store with the compare-and-set steps of a move, are here,
so that a lock or a rule on these rows is read and changed in one place.

Each function is its own short transaction. Reads go through `read_only_connection`, which
never waits for a writer: a store may be asked for a document while this process holds
retention's key lock (a write transaction) on SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy
from sqlalchemy import delete, func, insert, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from models.db import read_only_connection, session_scope
from models.tables import DocumentBlob, DocumentStoreState

__all__ = [
    "StoreState",
    "begin_move",
    "blob_size",
    "claim_store_state",
    "delete_blob",
    "finish_move",
    "insert_blob",
    "read_blob_slice",
    "read_store_state",
    "switch_to_move_target",
]

STATE_ID = 1


# -- stored PDFs (the postgres document store) -------------------------------------------------


def blob_size(engine: Engine, storage_key: str) -> int | None:
    """The stored PDF's size in bytes; None when there is none under this key."""
    with read_only_connection(engine) as connection:
        return connection.execute(
            select(DocumentBlob.size_bytes).where(col(DocumentBlob.storage_key) == storage_key)
        ).scalar()


def insert_blob(engine: Engine, storage_key: str, content: bytes, *, now: datetime) -> bool:
    """Store `content` under its key in one transaction; False (nothing written) when the key
    is there already, or another process stored it at the same moment. A key names its
    bytes, so either way the one copy is complete."""
    try:
        with session_scope(engine) as session:
            present = session.exec(
                select(func.count())
                .select_from(DocumentBlob)
                .where(col(DocumentBlob.storage_key) == storage_key)
            ).one()
            if present:
                return False
            session.execute(
                insert(DocumentBlob).values(
                    storage_key=storage_key,
                    size_bytes=len(content),
                    content=content,
                    created_at=now,
                )
            )
    except IntegrityError:
        return False  # the other writer committed first: its copy is the same bytes
    return True


def read_blob_slice(engine: Engine, storage_key: str, offset: int, length: int) -> bytes | None:
    """`length` bytes of the stored PDF from `offset` (fewer at its end); None when the key
    is gone. Only the slice crosses the wire: the column is stored out of line, uncompressed."""
    with read_only_connection(engine) as connection:
        found = connection.execute(
            select(func.substr(DocumentBlob.content, offset + 1, length)).where(
                col(DocumentBlob.storage_key) == storage_key
            )
        ).first()
    if found is None:
        return None
    return bytes(found[0] or b"")


def delete_blob(engine: Engine, storage_key: str) -> bool:
    """Remove the stored PDF; whether there was one."""
    with session_scope(engine) as session:
        result: Any = session.execute(
            delete(DocumentBlob).where(col(DocumentBlob.storage_key) == storage_key)
        )
        return bool(result.rowcount)


# -- the fleet's choice of store ----------------------------------------------------------------


@dataclass(frozen=True)
class StoreState:
    """Where the fleet keeps PDFs; during a move, both stores (names as `StoreLocation`s
    print them)."""

    active: str
    move_source: str | None
    move_target: str | None
    changed_at: datetime
    reason: str

    @property
    def other(self) -> str | None:
        """The store of a move in progress that is not the active one: readers look there
        for what the active one lacks, and retention deletes there too."""
        for name in (self.move_source, self.move_target):
            if name is not None and name != self.active:
                return name
        return None


def read_store_state(engine: Engine) -> StoreState | None:
    """The recorded choice; None while nothing has been recorded (the settings decide)."""
    with read_only_connection(engine) as connection:
        row = connection.execute(
            sqlalchemy.select(
                col(DocumentStoreState.active),
                col(DocumentStoreState.move_source),
                col(DocumentStoreState.move_target),
                col(DocumentStoreState.changed_at),
                col(DocumentStoreState.reason),
            ).where(col(DocumentStoreState.id) == STATE_ID)
        ).first()
    return None if row is None else StoreState(*row)


def claim_store_state(engine: Engine, active: str, *, now: datetime, reason: str) -> StoreState:
    """Record `active` as the fleet's store unless a store is recorded already; returns the
    recorded state (the other process's, when it was first)."""
    try:
        with session_scope(engine) as session:
            if session.get(DocumentStoreState, STATE_ID) is None:
                session.add(
                    DocumentStoreState(id=STATE_ID, active=active, changed_at=now, reason=reason)
                )
    except IntegrityError:
        pass  # another process recorded its choice first: that one holds
    state = read_store_state(engine)
    assert state is not None
    return state


def _compare_and_set(
    engine: Engine, expected: dict[str, str | None], values: dict[str, Any]
) -> bool:
    """Update the state row only if it still holds `expected`; whether it did."""
    statement = update(DocumentStoreState).where(col(DocumentStoreState.id) == STATE_ID)
    for name, value in expected.items():
        column = getattr(DocumentStoreState, name)
        statement = statement.where(column.is_(None) if value is None else column == value)
    with session_scope(engine) as session:
        result: Any = session.execute(statement.values(**values))
        return bool(result.rowcount)


def begin_move(engine: Engine, *, source: str, target: str, now: datetime) -> bool:
    """Announce a move from the active `source` to `target`: new PDFs still go to `source`,
    readers and retention look in `target` too. False if the state changed meanwhile."""
    return _compare_and_set(
        engine,
        {"active": source, "move_target": None},
        {
            "move_source": source,
            "move_target": target,
            "changed_at": now,
            "reason": f"yfdocs documents move: copying the PDFs from {source} to {target}",
        },
    )


def switch_to_move_target(engine: Engine, *, source: str, target: str, now: datetime) -> bool:
    """Make `target` the active store (new PDFs go there; readers fall back to `source`
    until the move ends). False if the state changed meanwhile."""
    return _compare_and_set(
        engine,
        {"active": source, "move_source": source, "move_target": target},
        {
            "active": target,
            "changed_at": now,
            "reason": f"yfdocs documents move: {target} is active, catching up from {source}",
        },
    )


def finish_move(engine: Engine, *, source: str, target: str, now: datetime) -> bool:
    """End the move: `target` alone holds the fleet's PDFs. False if the state changed."""
    return _compare_and_set(
        engine,
        {"active": target, "move_source": source, "move_target": target},
        {
            "move_source": None,
            "move_target": None,
            "changed_at": now,
            "reason": f"yfdocs documents move: every PDF a job needs moved from {source}",
        },
    )
