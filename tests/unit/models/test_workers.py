"""The workers' heartbeats: renewed while a worker consumes, marked when it stops,
begun again on a new start, and forgotten a day after the last beat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from models.workers import FORGET_AFTER, heartbeats, record_heartbeat, record_stopped

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_a_worker_is_renewed_while_it_beats_and_marked_when_it_stops(
    sqlite_engine: Engine,
) -> None:
    record_heartbeat(sqlite_engine, "worker@a", pid=10, now=T0)
    record_heartbeat(sqlite_engine, "worker@a", pid=10, now=T0 + timedelta(seconds=30))

    (row,) = heartbeats(sqlite_engine)
    assert (row.hostname, row.pid, row.started_at) == ("worker@a", 10, T0)
    assert row.last_seen_at == T0 + timedelta(seconds=30)
    assert row.stopped_at is None

    record_stopped(sqlite_engine, "worker@a", now=T0 + timedelta(seconds=40))
    (row,) = heartbeats(sqlite_engine)
    assert row.stopped_at == T0 + timedelta(seconds=40)


def test_a_new_start_under_the_same_name_begins_the_row_again(sqlite_engine: Engine) -> None:
    record_heartbeat(sqlite_engine, "worker@a", pid=10, now=T0)
    record_stopped(sqlite_engine, "worker@a", now=T0 + timedelta(minutes=1))

    record_heartbeat(sqlite_engine, "worker@a", pid=11, now=T0 + timedelta(minutes=2))

    (row,) = heartbeats(sqlite_engine)
    assert (row.pid, row.started_at, row.stopped_at) == (11, T0 + timedelta(minutes=2), None)


def test_rows_not_seen_for_a_day_are_forgotten(sqlite_engine: Engine) -> None:
    record_heartbeat(sqlite_engine, "yfdocs-1@old", pid=1, now=T0)
    later = T0 + FORGET_AFTER + timedelta(seconds=1)

    record_heartbeat(sqlite_engine, "yfdocs-2@new", pid=2, now=later)

    assert [row.hostname for row in heartbeats(sqlite_engine)] == ["yfdocs-2@new"]
