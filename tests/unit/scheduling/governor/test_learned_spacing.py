"""What a 429 does to the fleet, by the limit it names; the spacing learned from spike 429s."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from scheduling.deferrals import SlotWaitTimeout
from scheduling.policy.windows import decayed_spacing
from scheduling.usage import fleet_usage

from .conftest import TENANT, FakeClock, ledger, make_governor


def _gaps(engine: Engine) -> list[float]:
    starts = [row.at for row in ledger(engine)]
    return [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(starts)]


def test_a_spike_429_widens_the_interval_for_every_governor_without_a_pause(
    engine: Engine, second_engine: Engine, clock: FakeClock
) -> None:
    refused = make_governor(engine, clock, owner="host-a:1", min_interval=0.6)
    other = make_governor(second_engine, clock, owner="host-b:1", min_interval=0.6)
    refused_at = clock()

    with refused.slot("upload", TENANT) as slot:
        slot.record_response(429, None, "spike")
    for _ in range(3):
        with other.slot("status", TENANT):
            pass

    # 5% of the interval is learned; no 60 s fleet backoff for a spike 429.
    starts = [row.at for row in ledger(engine)]
    assert starts[1] - refused_at < timedelta(seconds=1)
    assert _gaps(engine)[1:] == pytest.approx([0.63, 0.63], abs=1e-4)
    assert fleet_usage(
        engine, daily_quota=6000, token_monthly_budget=400, now=clock()
    ).learned_spacing_s == pytest.approx(0.03, abs=1e-3)


def test_spike_429s_in_separate_incidents_double_the_extra_up_to_the_cap(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(
        engine, clock, min_interval=0.6, spacing_cap=0.2, spacing_half_life=1e9
    )
    learned = []
    for _ in range(5):
        clock.advance(10)
        governor.back_off(None, "429 (spike) on a status call", "spike")
        learned.append(fleet_usage(engine, daily_quota=1, token_monthly_budget=1, now=clock()))

    assert [usage.learned_spacing_s for usage in learned] == pytest.approx(
        [0.03, 0.06, 0.12, 0.2, 0.2], abs=1e-3
    )


def test_spike_429s_of_calls_already_under_way_widen_once(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, min_interval=0.6)

    governor.back_off(None, "429 (spike)", "spike")
    clock.advance(0.3)
    governor.back_off(None, "429 (spike)", "spike")
    clock.advance(0.3)
    governor.back_off(None, "429 (spike)", "spike")

    usage = fleet_usage(engine, daily_quota=1, token_monthly_budget=1, now=clock())
    assert usage.learned_spacing_s == pytest.approx(0.03, abs=1e-3)


def test_the_learned_extra_halves_with_each_half_life(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, min_interval=1.0, spacing_half_life=600)
    governor.back_off(None, "429 (spike)", "spike")
    raised = clock()

    assert decayed_spacing(0.05, raised, raised + timedelta(seconds=600), 600) == 0.025
    clock.advance(600)
    with governor.slot("status", TENANT):
        pass
    clock.advance(0.01)
    with governor.slot("status", TENANT):
        pass

    assert _gaps(engine) == pytest.approx([1.025], abs=1e-3)


def test_a_spike_429_with_retry_after_also_pauses_the_fleet(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, min_interval=0.6)
    refused_at = clock()

    resume_at = governor.back_off(4.0, "429 (spike)", "spike")
    with governor.slot("status", TENANT):
        pass

    assert resume_at == refused_at + timedelta(seconds=4)
    assert ledger(engine)[0].at >= refused_at + timedelta(seconds=4)


def test_a_parallel_429_waits_a_moment_not_a_minute(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, min_interval=0.0)
    refused_at = clock()

    with governor.slot("upload", TENANT) as slot:
        slot.record_response(429, None, "parallel")
    with governor.slot("upload", TENANT):
        pass

    second = ledger(engine)[1].at
    assert refused_at + timedelta(seconds=1) <= second < refused_at + timedelta(seconds=2)


def test_a_quota_429_holds_the_fleet_until_the_quota_day_turns(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, max_wait=30)

    with governor.slot("upload", TENANT) as slot:
        slot.record_response(429, None, "quota")
    with pytest.raises(SlotWaitTimeout) as raised, governor.slot("status", TENANT):
        pass

    midnight = (clock() + timedelta(days=1)).replace(hour=0, minute=0, second=0)
    assert raised.value.until == midnight
    assert "quota" in raised.value.reason


def test_a_429_naming_no_limit_keeps_the_configured_backoff(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, rate_limit_backoff=45.0, max_wait=30)
    refused_at = clock()

    with governor.slot("upload", TENANT) as slot:
        slot.record_response(429, None, None)
    with pytest.raises(SlotWaitTimeout) as raised, governor.slot("status", TENANT):
        pass

    assert raised.value.until == refused_at + timedelta(seconds=45)
    usage = fleet_usage(engine, daily_quota=1, token_monthly_budget=1, now=clock())
    assert usage.learned_spacing_s == 0.0


def test_a_late_429_of_a_call_let_go_before_the_widening_does_not_widen_again(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, min_interval=0.6, spacing_half_life=1e9)

    with governor.slot("upload", TENANT) as slow_upload:
        clock.advance(0.01)
        governor.back_off(None, "429 (spike) on a status call", "spike")
        clock.advance(5.0)  # a large body: its 429 comes back long after the first
        slow_upload.record_response(429, None, "spike")
    after_the_incident = fleet_usage(engine, daily_quota=9, token_monthly_budget=9, now=clock())
    with governor.slot("status", TENANT) as later_call:
        later_call.record_response(429, None, "spike")
    after_a_new_one = fleet_usage(engine, daily_quota=9, token_monthly_budget=9, now=clock())

    assert after_the_incident.learned_spacing_s == pytest.approx(0.03, abs=1e-3)
    assert after_a_new_one.learned_spacing_s == pytest.approx(0.06, abs=1e-3)


def test_the_ledger_keeps_the_limit_each_429_named(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, max_wait=30)
    answers = [(200, None), (429, "spike"), (429, None), (500, "quota")]

    for status_code, limit in answers:
        with governor.slot("upload", TENANT) as slot:
            slot.record_response(status_code, None, limit)
        clock.advance(5)  # past a spike's widened interval
        if status_code == 429 and limit is None:
            clock.advance(governor.rate_limit_backoff)

    rows = [(row.status_code, row.limit_name) for row in ledger(engine)]
    assert rows == [(200, None), (429, "spike"), (429, None), (500, None)]
