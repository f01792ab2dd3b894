"""The one module that queries the workers' heartbeats (`worker_heartbeats`).

A worker's main process records that it is consuming (`record_heartbeat`) and that it
stopped (`record_stopped`); the metrics read every row (`heartbeats`). A row a worker has
not renewed for `FORGET_AFTER` is deleted by the next heartbeat of any worker, so a fleet
whose node names change with every start (a pid in the name, a new container) does not
collect rows for ever.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from models.tables import WorkerHeartbeat

__all__ = [
    "CONSUMING_WITHIN",
    "FORGET_AFTER",
    "HEARTBEAT_EVERY",
    "heartbeats",
    "is_consuming",
    "record_heartbeat",
    "record_stopped",
]

HEARTBEAT_EVERY = timedelta(seconds=30)  # a consuming worker writes its row this often
CONSUMING_WITHIN = 3 * HEARTBEAT_EVERY  # a row older than this: the worker is not consuming
FORGET_AFTER = timedelta(days=1)

_beats = WorkerHeartbeat.__table__  # type: ignore[attr-defined]


def record_heartbeat(engine: Engine, hostname: str, *, pid: int | None, now: datetime) -> None:
    """This worker is consuming now; its row is made on the first beat of a new start."""
    with engine.begin() as connection:
        renewed = connection.execute(
            update(_beats)
            .where(_beats.c.hostname == hostname, _beats.c.stopped_at.is_(None))
            .values(last_seen_at=now, pid=pid)
        ).rowcount
        if not renewed:
            # A new start of this node name (or its first): the row begins again.
            connection.execute(delete(_beats).where(_beats.c.hostname == hostname))
            connection.execute(
                insert(_beats).values(
                    hostname=hostname, pid=pid, started_at=now, last_seen_at=now, stopped_at=None
                )
            )
        connection.execute(delete(_beats).where(_beats.c.last_seen_at < now - FORGET_AFTER))


def record_stopped(engine: Engine, hostname: str, *, now: datetime) -> None:
    """This worker shut down cleanly: it is no longer consuming."""
    with engine.begin() as connection:
        connection.execute(
            update(_beats)
            .where(_beats.c.hostname == hostname)
            .values(stopped_at=now, last_seen_at=now)
        )


def heartbeats(engine: Engine) -> list[WorkerHeartbeat]:
    """Every worker's row, by node name."""
    with engine.connect() as connection:
        rows = connection.execute(select(_beats).order_by(_beats.c.hostname)).all()
    return [WorkerHeartbeat.model_validate(row._mapping) for row in rows]


def is_consuming(row: WorkerHeartbeat, now: datetime) -> bool:
    """Whether the worker of this row counts as consuming at `now`."""
    return row.stopped_at is None and now - row.last_seen_at <= CONSUMING_WITHIN
