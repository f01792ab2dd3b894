"""The daily API quota, the monthly token budget, and the usage figures for `yfdocs status`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from scheduling.deferrals import QuotaExhausted, TokenBudgetExhausted
from scheduling.policy.windows import month_window, quota_day_window
from scheduling.usage import fleet_usage

from .conftest import TENANT, FakeClock, add_calls, ledger, make_governor


def test_a_spent_daily_quota_raises_at_once_with_the_next_utc_midnight(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, daily_quota=3, min_interval=0.0)
    for _ in range(3):
        with governor.slot("upload", TENANT):
            pass

    with pytest.raises(QuotaExhausted) as raised, governor.slot("status", TENANT):
        pass

    assert raised.value.resets_at == datetime(2026, 3, 11, tzinfo=UTC)
    assert raised.value.until == raised.value.resets_at
    assert clock.sleeps == []
    assert len(ledger(engine)) == 3


def test_the_quota_window_ends_at_midnight_utc(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, daily_quota=2, min_interval=0.0)
    clock.set(datetime(2026, 3, 10, 23, 59, 59, 500000, tzinfo=UTC))
    add_calls(engine, "status", datetime(2026, 3, 10, 0, 0, tzinfo=UTC), clock())

    with pytest.raises(QuotaExhausted), governor.slot("status", TENANT):
        pass
    clock.set(datetime(2026, 3, 11, 0, 0, 0, tzinfo=UTC))
    with governor.slot("status", TENANT):
        pass

    assert ledger(engine)[-1].at == datetime(2026, 3, 11, tzinfo=UTC)


def test_yesterday_s_calls_do_not_count(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, daily_quota=1)
    add_calls(engine, "upload", clock() - timedelta(days=1))

    with governor.slot("upload", TENANT):
        pass

    assert len(ledger(engine)) == 2


def test_the_quota_day_follows_the_configured_timezone(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(
        engine, clock, daily_quota=1, min_interval=0.0, quota_timezone="Europe/Amsterdam"
    )
    clock.set(datetime(2026, 3, 10, 22, 30, tzinfo=UTC))  # 23:30 in Amsterdam (CET)
    with governor.slot("status", TENANT):
        pass

    with pytest.raises(QuotaExhausted) as raised, governor.slot("status", TENANT):
        pass

    assert raised.value.resets_at == datetime(2026, 3, 10, 23, 0, tzinfo=UTC)


def test_quota_windows_across_daylight_saving_and_year_end() -> None:
    summer = datetime(2026, 7, 1, 12, tzinfo=UTC)
    assert quota_day_window(summer, "Europe/Amsterdam") == (
        datetime(2026, 6, 30, 22, tzinfo=UTC),
        datetime(2026, 7, 1, 22, tzinfo=UTC),
    )
    spring_forward = datetime(2026, 3, 29, 12, tzinfo=UTC)  # a 23-hour day in Amsterdam
    start, end = quota_day_window(spring_forward, "Europe/Amsterdam")
    assert end - start == timedelta(hours=23)
    assert month_window(datetime(2026, 12, 31, 23, tzinfo=UTC)) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )


def test_token_calls_do_not_count_against_the_daily_quota(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, daily_quota=2, min_interval=0.0)
    add_calls(engine, "token", *[clock()] * 5)

    with governor.slot("status", TENANT), governor.slot("upload", TENANT):
        pass
    with governor.slot("token", TENANT):
        pass
    with pytest.raises(QuotaExhausted), governor.slot("read", TENANT):
        pass

    assert [row.kind for row in ledger(engine)][-3:] == ["status", "upload", "token"]


def test_the_token_budget_warns_at_90_percent_once_and_refuses_at_100(
    engine: Engine, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    governor = make_governor(engine, clock, token_monthly_budget=10, min_interval=0.0)
    add_calls(engine, "token", *[clock() - timedelta(days=n) for n in range(1, 8)])
    caplog.set_level(logging.WARNING, logger="scheduling.governor")

    with governor.slot("token", TENANT):  # request 8 of 10: no warning yet
        pass
    assert caplog.records == []
    with governor.slot("token", TENANT):  # 9 of 10
        pass
    with governor.slot("token", TENANT):  # 10 of 10
        pass
    with pytest.raises(TokenBudgetExhausted) as raised, governor.slot("token", TENANT):
        pass

    warnings = [r for r in caplog.records if "token request" in r.getMessage()]
    assert len(warnings) == 1
    assert "9 of a monthly budget of 10" in warnings[0].getMessage()
    assert raised.value.resets_at == datetime(2026, 4, 1, tzinfo=UTC)
    assert clock.sleeps == []


def test_a_spent_token_budget_does_not_stop_api_calls(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, token_monthly_budget=2)
    add_calls(engine, "token", clock(), clock())

    with pytest.raises(TokenBudgetExhausted), governor.slot("token", TENANT):
        pass
    with governor.slot("upload", TENANT):
        pass


def test_last_month_s_token_requests_do_not_count(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, token_monthly_budget=1)
    add_calls(engine, "token", datetime(2026, 2, 28, 23, 59, tzinfo=UTC))

    with governor.slot("token", TENANT):
        pass


def test_fleet_usage_reports_the_budgets_and_the_backoff(engine: Engine, clock: FakeClock) -> None:
    now = clock()
    add_calls(engine, "upload", now - timedelta(hours=2), now - timedelta(minutes=5))
    add_calls(engine, "status", now - timedelta(minutes=1), now - timedelta(days=1))
    add_calls(engine, "token", now - timedelta(days=3), now - timedelta(days=40))
    make_governor(engine, clock).back_off(120.0, "429 on an upload call")

    usage = fleet_usage(engine, daily_quota=6000, token_monthly_budget=400, now=now)

    assert usage.calls_today == 3
    assert usage.quota_left == 5997
    assert usage.daily_quota == 6000
    assert usage.quota_resets_at == datetime(2026, 3, 11, tzinfo=UTC)
    assert usage.token_requests_this_month == 1
    assert usage.token_monthly_budget == 400
    assert usage.backoff_until == now + timedelta(seconds=120)
    assert usage.calls_last_hour == 2


def test_fleet_usage_on_an_unused_database(engine: Engine, clock: FakeClock) -> None:
    usage = fleet_usage(engine, daily_quota=5, token_monthly_budget=400, now=clock())

    assert (usage.calls_today, usage.quota_left, usage.backoff_until) == (0, 5, None)


def test_fleet_usage_hides_a_backoff_that_is_over(engine: Engine, clock: FakeClock) -> None:
    make_governor(engine, clock).back_off(1.0, "429")
    clock.advance(2)

    usage = fleet_usage(engine, daily_quota=5, token_monthly_budget=400, now=clock())

    assert usage.backoff_until is None
