"""A migrated database of each kind (SQLite file, fresh PostgreSQL database per module),
emptied before each test, and a fake clock whose sleep moves time on instead of waiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine

from models import ApiCall, make_engine
from models.tables import GovernorSlot
from scheduling import governor as governor_module
from scheduling.governor import DatabaseGovernor

GOVERNOR_TABLES = ("api_calls", "governor_slots", "governor_state")
TENANT = "4028868"


class FakeClock:
    """Aware UTC time that moves only when told to, or when someone sleeps on it."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC))


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    """The module's migrated engine with the ledger and the governor's tables empty."""
    with migrated_engine.begin() as connection:
        for table in GOVERNOR_TABLES:
            connection.execute(text(f"DELETE FROM {table}"))
    return migrated_engine


@pytest.fixture
def second_engine(database_url: str, engine: Engine) -> Iterator[Engine]:
    """Another engine on the same database: what another worker process would hold."""
    other = make_engine(database_url)
    yield other
    other.dispose()


@pytest.fixture(autouse=True)
def _forget_token_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 90% warning is once per process per month; each test starts unwarned."""
    monkeypatch.setattr(governor_module, "_warned_months", set())


def make_governor(engine: Engine, clock: FakeClock, **overrides: Any) -> DatabaseGovernor:
    """A governor on the fake clock with small, test-friendly limits unless overridden."""
    arguments: dict[str, Any] = {
        "max_concurrency": 3,
        "min_interval": 0.6,
        "rate_per_minute": 100,
        "daily_quota": 6000,
        "token_monthly_budget": 400,
        "lease_seconds": 10.0,
        "owner": "test-host:1",
        "clock": clock,
        "sleep": clock.sleep,
        "max_wait": 30.0,
        "poll_interval": 0.25,
        "start_lead": 0.0,
    }
    arguments.update(overrides)
    return DatabaseGovernor(engine, **arguments)


def ledger(engine: Engine) -> list[Any]:
    """The ledger's rows (typed: `at` is aware UTC), oldest first."""
    table = ApiCall.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        return list(connection.execute(select(table).order_by(table.c.id)))


def slots(engine: Engine) -> list[Any]:
    """The slot rows (typed), by number."""
    table = GovernorSlot.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        return list(connection.execute(select(table).order_by(table.c.slot_no)))


def add_calls(engine: Engine, kind: str, *moments: datetime) -> None:
    """Ledger rows for calls made earlier (by this fleet), answered 200."""
    table = ApiCall.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        for moment in moments:
            connection.execute(
                insert(table).values(at=moment, kind=kind, tenant_id=TENANT, status_code=200)
            )
