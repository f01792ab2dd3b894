"""Spacing between call starts, the per-minute cap and the fleet-wide 429 backoff."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from scheduling.deferrals import SlotWaitTimeout

from .conftest import TENANT, FakeClock, add_calls, ledger, make_governor


def test_call_starts_are_spaced_by_the_min_interval(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, min_interval=0.6)

    for _ in range(5):
        with governor.slot("status", TENANT) as slot:
            slot.record_response(200, None)

    starts = [row.at for row in ledger(engine)]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(starts)]
    assert gaps == pytest.approx([0.6] * 4, abs=1e-6)


def test_waiting_for_the_interval_is_short_sleeps_not_a_spin(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, min_interval=2.0, max_sleep=0.5)

    for _ in range(2):
        with governor.slot("upload", TENANT):
            pass

    assert clock.sleeps
    assert all(0 < pause <= 0.5 for pause in clock.sleeps)
    assert sum(clock.sleeps) == pytest.approx(2.0, abs=1e-6)


def test_interval_holds_between_two_governors_sharing_the_database(
    engine: Engine, second_engine: Engine, clock: FakeClock
) -> None:
    first = make_governor(engine, clock, owner="host-a:1")
    second = make_governor(second_engine, clock, owner="host-b:1")

    for governor in (first, second, first, second):
        with governor.slot("status", TENANT):
            pass

    starts = [row.at for row in ledger(engine)]
    assert all(
        later - earlier >= timedelta(seconds=0.6) for earlier, later in itertools.pairwise(starts)
    )


def test_per_minute_cap_delays_the_call_over_it_until_the_window_moves(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, min_interval=0.0, rate_per_minute=5, max_wait=90)

    for _ in range(6):
        with governor.slot("status", TENANT):
            clock.advance(1.0)

    starts = [row.at for row in ledger(engine)]
    assert starts[5] - starts[0] == timedelta(seconds=60)


def test_per_minute_cap_beyond_max_wait_defers_to_when_the_window_moves(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, min_interval=0.0, rate_per_minute=3, max_wait=10)
    first = clock()
    add_calls(engine, "status", first, first, first)

    with pytest.raises(SlotWaitTimeout) as raised, governor.slot("status", TENANT):
        pass

    assert raised.value.until == first + timedelta(seconds=60)
    assert clock.sleeps == []


def test_token_calls_do_not_count_towards_the_per_minute_cap(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, min_interval=0.0, rate_per_minute=2, max_wait=1)
    add_calls(engine, "token", clock(), clock(), clock())

    with governor.slot("status", TENANT), governor.slot("status", TENANT):
        pass

    assert clock.sleeps == []


def test_a_429_backs_off_every_governor_on_the_database(
    engine: Engine, second_engine: Engine, clock: FakeClock
) -> None:
    refused = make_governor(engine, clock, owner="host-a:1")
    other = make_governor(second_engine, clock, owner="host-b:1")
    refused_at = clock()

    with refused.slot("upload", TENANT) as slot:
        slot.record_response(429, 5.0)
    with other.slot("status", TENANT):
        pass

    last = ledger(engine)[-1]
    assert last.at >= refused_at + timedelta(seconds=5)
    assert last.at < refused_at + timedelta(seconds=6)


def test_a_429_without_retry_after_backs_off_60s_and_beyond_max_wait_defers(
    engine: Engine, second_engine: Engine, clock: FakeClock
) -> None:
    refused = make_governor(engine, clock, owner="host-a:1")
    other = make_governor(second_engine, clock, owner="host-b:1", max_wait=30)
    refused_at = clock()

    with refused.slot("status", TENANT) as slot:
        slot.record_response(429, None)
    with pytest.raises(SlotWaitTimeout) as raised, other.slot("status", TENANT):
        pass

    assert raised.value.until == refused_at + timedelta(seconds=60)
    assert "429" in raised.value.reason
    assert clock.sleeps == []


def test_the_wait_after_a_429_without_retry_after_is_configurable(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, rate_limit_backoff=6.0)
    refused_at = clock()

    with governor.slot("upload", TENANT) as slot:
        slot.record_response(429, None)
    with governor.slot("upload", TENANT):
        granted_at = clock()

    assert refused_at + timedelta(seconds=6) <= granted_at < refused_at + timedelta(seconds=7)


def test_a_shorter_second_429_does_not_shorten_the_backoff(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, max_wait=120)
    start = clock()

    governor.back_off(30.0, "429 on an upload call")
    governor.back_off(2.0, "429 on a status call")
    with governor.slot("status", TENANT):
        pass

    assert ledger(engine)[-1].at >= start + timedelta(seconds=30)


def test_other_answers_do_not_back_off(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, min_interval=0.0)

    for status in (200, 500, 503, None):
        with governor.slot("status", TENANT) as slot:
            slot.record_response(status, 30.0)

    assert clock.sleeps == []
    assert [row.status_code for row in ledger(engine)] == [200, 500, 503, None]
