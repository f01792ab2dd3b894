"""The one module that queries the HTTP intake's callers (`intake_keys`).

Key generation, hashing and the constant-time checks live in `intake.callers`; this module
only reads and writes rows, so the table's queries are read and changed in one place.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.db import session_scope
from models.errors import Decision, YfdocsError
from models.tables import IntakeKey

__all__ = [
    "IntakeKeyExists",
    "delete_key",
    "insert_key",
    "key_by_id",
    "key_by_name",
    "list_keys",
]


class IntakeKeyExists(YfdocsError):
    """`yfdocs intake keys add` was given a name (or drew a key id) already in use."""

    decision = Decision.REFUSE


def insert_key(engine: Engine, key: IntakeKey) -> None:
    """Store a new caller; `IntakeKeyExists` if its name or key id is taken."""
    try:
        with session_scope(engine) as session:
            session.add(key)
    except IntegrityError:
        raise IntakeKeyExists(f"an intake key named {key.name!r} already exists") from None


def key_by_id(engine: Engine, key_id: str) -> IntakeKey | None:
    """The caller whose key starts with this public id, if any."""
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(select(IntakeKey).where(col(IntakeKey.key_id) == key_id)).first()


def key_by_name(engine: Engine, name: str) -> IntakeKey | None:
    """The caller of this name, if any."""
    with Session(engine, expire_on_commit=False) as session:
        return session.get(IntakeKey, name)


def list_keys(engine: Engine) -> list[IntakeKey]:
    """Every caller, by name."""
    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(select(IntakeKey).order_by(col(IntakeKey.name))).all())


def delete_key(engine: Engine, name: str) -> bool:
    """Revoke a caller by removing it; False when there was none of that name."""
    with session_scope(engine) as session:
        result = session.execute(delete(IntakeKey).where(col(IntakeKey.name) == name))
        return bool(result.rowcount)  # type: ignore[attr-defined]
