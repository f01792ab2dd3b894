"""Concurrency: slots under leases, reclaimed from a lost holder, released after errors."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from models import make_engine
from models.tables import GovernorSlot
from scheduling.deferrals import SlotWaitTimeout
from scheduling.governor import DatabaseGovernor

from .conftest import TENANT, FakeClock, ledger, make_governor, slots

_slots = GovernorSlot.__table__  # type: ignore[attr-defined]


def _lose_holder(engine: Engine, slot_no: int, lease_expires_at: object) -> None:
    """What a process killed mid-call leaves behind: a slot held under a running lease."""
    with engine.begin() as connection:
        connection.execute(
            update(_slots)
            .where(_slots.c.slot_no == slot_no)
            .values(holder="dead-host:99:0123456789ab", lease_expires_at=lease_expires_at)
        )


def test_no_more_than_max_concurrency_slots_are_held(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, max_concurrency=2, min_interval=0.0, max_wait=1.0)

    with contextlib.ExitStack() as held:
        held.enter_context(governor.slot("upload", TENANT))
        held.enter_context(governor.slot("upload", TENANT))
        with pytest.raises(SlotWaitTimeout) as raised, governor.slot("upload", TENANT):
            pass

    assert "busy" in raised.value.reason
    assert len(ledger(engine)) == 2


def test_a_lost_holder_s_slot_is_reclaimed_when_its_lease_runs_out(
    engine: Engine, second_engine: Engine, clock: FakeClock
) -> None:
    make_governor(engine, clock, max_concurrency=1)._ensure_rows()
    expires = clock() + timedelta(seconds=10)
    _lose_holder(engine, 1, expires)
    survivor = make_governor(second_engine, clock, max_concurrency=1, max_wait=30)

    with survivor.slot("status", TENANT):
        pass

    assert ledger(engine)[-1].at >= expires
    assert slots(engine)[0].holder is None


def test_a_lost_holder_s_lease_beyond_max_wait_defers_to_its_expiry(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, max_concurrency=1, max_wait=3)
    governor._ensure_rows()
    expires = clock() + timedelta(seconds=5)
    _lose_holder(engine, 1, expires)

    with pytest.raises(SlotWaitTimeout) as raised, governor.slot("status", TENANT):
        pass

    assert raised.value.until == expires


def test_busy_slots_defer_at_most_another_max_wait(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, max_concurrency=1, max_wait=3)
    governor._ensure_rows()
    start = clock()
    _lose_holder(engine, 1, start + timedelta(seconds=100))

    with pytest.raises(SlotWaitTimeout) as raised, governor.slot("status", TENANT):
        pass

    assert start + timedelta(seconds=3) <= raised.value.until <= start + timedelta(seconds=7)


def test_the_slot_is_released_and_the_call_recorded_when_the_call_raises(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, max_concurrency=1)

    def failing_call() -> None:
        with governor.slot("upload", TENANT) as slot:
            slot.record_response(None, None)
            clock.advance(0.25)
            raise ConnectionError("dropped")

    with pytest.raises(ConnectionError):
        failing_call()

    assert slots(engine)[0].holder is None
    [call] = ledger(engine)
    assert (call.kind, call.tenant_id, call.status_code, call.duration_ms) == (
        "upload",
        TENANT,
        None,
        250,
    )


def test_slot_rows_above_max_concurrency_are_ignored(engine: Engine, clock: FakeClock) -> None:
    make_governor(engine, clock, max_concurrency=3)._ensure_rows()
    shrunk = make_governor(engine, clock, max_concurrency=1, min_interval=0.0, max_wait=1.0)

    with shrunk.slot("status", TENANT):
        with pytest.raises(SlotWaitTimeout), shrunk.slot("status", TENANT):
            pass
        assert [row.holder is not None for row in slots(engine)] == [True, False, False]


def test_a_raised_concurrency_creates_the_missing_slot_rows(
    engine: Engine, clock: FakeClock
) -> None:
    make_governor(engine, clock, max_concurrency=1)._ensure_rows()
    grown = make_governor(engine, clock, max_concurrency=4, min_interval=0.0)

    with contextlib.ExitStack() as held:
        for _ in range(4):
            held.enter_context(grown.slot("status", TENANT))
        assert [row.slot_no for row in slots(engine) if row.holder] == [1, 2, 3, 4]


def test_threads_with_their_own_engines_never_exceed_the_concurrency(
    database_url: str, engine: Engine
) -> None:
    """Real time, real sleeps: 6 threads, each its own engine and governor, 2 slots."""
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        nonlocal in_flight, peak
        own_engine = make_engine(database_url)
        governor = DatabaseGovernor(
            own_engine,
            max_concurrency=2,
            min_interval=0.005,
            rate_per_minute=10_000,
            daily_quota=6000,
            token_monthly_budget=400,
            lease_seconds=30,
            owner=f"thread-{number}",
            max_wait=20,
            poll_interval=0.005,
        )
        try:
            for _ in range(4):
                with governor.slot("status", TENANT) as slot:
                    with lock:
                        in_flight += 1
                        peak = max(peak, in_flight)
                    time.sleep(0.02)
                    with lock:
                        in_flight -= 1
                    slot.record_response(200, None)
        except BaseException as exc:
            errors.append(exc)
        finally:
            own_engine.dispose()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=25)

    assert errors == []
    assert peak == 2
    starts = [row.at for row in ledger(engine)]
    assert len(starts) == 24
    assert min(b - a for a, b in itertools.pairwise(starts)) >= timedelta(seconds=0.005)
