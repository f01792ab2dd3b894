"""UTC timestamps: aware on the way out of SQLite, naive refused on the way in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError
from sqlmodel import Session

from models import TokenCacheEntry, session_scope, utcnow


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)


def test_round_trip_is_aware_and_normalised_to_utc(sqlite_engine: Engine) -> None:
    amsterdam = timezone(timedelta(hours=2))
    local = datetime(2024, 6, 1, 14, 30, 15, 123456, tzinfo=amsterdam)
    with session_scope(sqlite_engine) as session:
        session.add(TokenCacheEntry(cache_key="k", expires_at=local))
    with Session(sqlite_engine) as session:
        entry = session.get(TokenCacheEntry, "k")
        assert entry is not None
        assert entry.expires_at is not None
        assert entry.expires_at.tzinfo is not None
        assert entry.expires_at == local
        assert entry.expires_at.utcoffset() == timedelta(0)
        assert entry.expires_at.hour == 12
        assert entry.expires_at.microsecond == 123456


def test_naive_datetime_is_refused(sqlite_engine: Engine) -> None:
    naive = datetime(2024, 1, 1)
    with Session(sqlite_engine) as session:
        session.add(TokenCacheEntry(cache_key="naive", expires_at=naive))
        with pytest.raises(StatementError, match="timezone-aware"):
            session.flush()


def test_none_stays_none(sqlite_engine: Engine) -> None:
    with session_scope(sqlite_engine) as session:
        session.add(TokenCacheEntry(cache_key="none"))
    with Session(sqlite_engine) as session:
        entry = session.get(TokenCacheEntry, "none")
        assert entry is not None
        assert entry.expires_at is None
        assert entry.fetching_until is None


def test_utc_value_is_unchanged() -> None:
    value = datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    assert value.astimezone(UTC) == value
