"""The one module that queries the persons learner mapping reads (`persons`,
`person_emails`, `person_syncs`).

A persons sync (`intake.person_sync`) writes a page of changes at a time through
`apply_person_changes`; learner mapping (`intake.learners`) reads through the look-ups
below. Addresses are stored and looked up lower-cased.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models.db import session_scope
from models.tables import Person, PersonEmail, PersonSync

__all__ = [
    "PersonEntry",
    "apply_person_changes",
    "count_persons",
    "person_code_known",
    "person_codes_with_email",
    "record_sync",
    "sync_state",
]


@dataclass(frozen=True)
class PersonEntry:
    """A live person as the reader gave it: record id, personCode, addresses and kinds."""

    person_id: str
    person_code: str
    emails: tuple[tuple[str, str], ...]  # (address, kind)
    changed_at: datetime | None


def apply_person_changes(
    engine: Engine,
    tenant_id: str,
    *,
    upserts: Sequence[PersonEntry],
    deletions: Sequence[str],
    now: datetime,
) -> None:
    """Store these persons (replacing what was known of them) and remove the deleted ids,
    in one transaction: a sync killed half-way leaves whole pages, never half a person."""
    ids = [entry.person_id for entry in upserts] + list(deletions)
    if not ids:
        return
    with session_scope(engine) as session:
        session.execute(
            delete(PersonEmail).where(
                col(PersonEmail.tenant_id) == tenant_id, col(PersonEmail.person_id).in_(ids)
            )
        )
        session.execute(
            delete(Person).where(col(Person.tenant_id) == tenant_id, col(Person.person_id).in_(ids))
        )
        session.flush()
        for entry in upserts:
            session.add(
                Person(
                    tenant_id=tenant_id,
                    person_id=entry.person_id,
                    person_code=entry.person_code,
                    changed_at=entry.changed_at,
                    synced_at=now,
                )
            )
            for address, kind in dict.fromkeys(entry.emails):
                session.add(
                    PersonEmail(
                        tenant_id=tenant_id,
                        person_id=entry.person_id,
                        address=address.lower(),
                        kind=kind,
                    )
                )


def person_codes_with_email(engine: Engine, tenant_id: str, address: str) -> list[str]:
    """The personCodes of every person of the tenant with this address, of any kind."""
    statement = (
        select(Person.person_code)
        .join(
            PersonEmail,
            (col(PersonEmail.tenant_id) == col(Person.tenant_id))
            & (col(PersonEmail.person_id) == col(Person.person_id)),
        )
        .where(col(PersonEmail.tenant_id) == tenant_id, col(PersonEmail.address) == address.lower())
        .distinct()
        .order_by(col(Person.person_code))
    )
    with Session(engine) as session:
        return list(session.exec(statement).all())


def person_code_known(engine: Engine, tenant_id: str, person_code: str) -> bool:
    """Whether the tenant's synced persons include this personCode."""
    with Session(engine) as session:
        found = session.exec(
            select(Person.person_id).where(
                col(Person.tenant_id) == tenant_id, col(Person.person_code) == person_code
            )
        ).first()
    return found is not None


def count_persons(engine: Engine, tenant_id: str) -> int:
    """How many persons of the tenant are stored."""
    with Session(engine) as session:
        return int(
            session.exec(
                select(func.count()).select_from(Person).where(col(Person.tenant_id) == tenant_id)
            ).one()
        )


def sync_state(engine: Engine, tenant_id: str) -> PersonSync | None:
    """Where the tenant's sync stands; None before its first sync."""
    with Session(engine, expire_on_commit=False) as session:
        return session.get(PersonSync, tenant_id)


def record_sync(
    engine: Engine, tenant_id: str, *, changed_after: datetime | None, synced_at: datetime
) -> None:
    """Remember a finished sync and the watermark the next delta starts from."""
    with session_scope(engine) as session:
        state = session.get(PersonSync, tenant_id, with_for_update=True)
        if state is None:
            state = PersonSync(tenant_id=tenant_id)
        state.changed_after = changed_after
        state.synced_at = synced_at
        session.add(state)
