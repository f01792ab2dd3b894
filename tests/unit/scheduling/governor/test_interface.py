"""The governor's face: exception tree, pickling for Celery, the settings factory, the schema."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from config import Settings
from scheduling.deferrals import CallDeferred, QuotaExhausted, SlotWaitTimeout, TokenBudgetExhausted
from scheduling.governor import DatabaseGovernor, governor_from_settings

from .conftest import TENANT, FakeClock, make_governor

MOMENT = datetime(2026, 3, 11, tzinfo=UTC)


@pytest.mark.parametrize("kind", [QuotaExhausted, TokenBudgetExhausted, SlotWaitTimeout])
def test_every_deferral_is_a_call_deferred_with_until_and_reason(kind: type[CallDeferred]) -> None:
    error = kind(MOMENT)

    assert isinstance(error, CallDeferred)
    assert error.until == MOMENT
    assert error.reason
    assert MOMENT.isoformat() in str(error)


@pytest.mark.parametrize("kind", [QuotaExhausted, TokenBudgetExhausted, SlotWaitTimeout])
def test_a_deferral_survives_pickling(kind: type[CallDeferred]) -> None:
    error = kind(MOMENT, "why")

    copy = pickle.loads(pickle.dumps(error))

    assert (type(copy), copy.until, copy.reason) == (kind, MOMENT, "why")


def test_until_is_given_in_utc() -> None:
    amsterdam = timezone(timedelta(hours=1))

    error = QuotaExhausted(datetime(2026, 3, 11, 1, tzinfo=amsterdam))

    assert error.until.tzinfo is UTC
    assert error.until == MOMENT


def test_an_unknown_call_kind_is_refused(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock)

    with pytest.raises(ValueError, match="unknown call kind"), governor.slot("delete", TENANT):
        pass


def test_the_factory_takes_the_limits_from_the_settings(engine: Engine) -> None:
    settings = Settings(
        max_concurrency=2,
        min_interval=0.7,
        rate_per_minute=80,
        daily_quota=5000,
        token_monthly_budget=300,
        lease_seconds=200,
    )

    governor = governor_from_settings(engine, settings, "host:1", max_wait=5.0)

    assert isinstance(governor, DatabaseGovernor)
    assert governor.max_concurrency == 2
    assert governor.min_interval == timedelta(seconds=0.7)
    assert governor.rate_per_minute == 80
    assert governor.daily_quota == 5000
    assert governor.token_monthly_budget == 300
    assert governor.lease == timedelta(seconds=200)
    assert governor.max_wait == 5.0
    assert governor.owner == "host:1"


def test_an_unknown_quota_timezone_fails_at_construction(engine: Engine, clock: FakeClock) -> None:
    with pytest.raises(Exception, match="Nowhere"):
        make_governor(engine, clock, quota_timezone="Nowhere/Land")


def test_migration_creates_the_governor_tables_without_rows(engine: Engine) -> None:
    inspector = inspect(engine)

    assert {c["name"] for c in inspector.get_columns("governor_slots")} == {
        "slot_no",
        "holder",
        "acquired_at",
        "lease_expires_at",
    }
    assert {c["name"] for c in inspector.get_columns("governor_state")} == {
        "id",
        "next_call_at",
        "backoff_until",
        "backoff_reason",
        "spacing_extra",
        "spacing_raised_at",
    }
