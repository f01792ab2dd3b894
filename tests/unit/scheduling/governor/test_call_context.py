"""The step's call context in the governor: calls name their job in the ledger, no wait
runs past the step's last moment to start a call, a stopping process stops waiting, and a
slot granted but not yet used is given back when the wait for its start is cut short."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from scheduling import call_context
from scheduling.call_context import WorkerStopping
from scheduling.deferrals import SlotWaitTimeout

from .conftest import TENANT, FakeClock, ledger, make_governor, slots


class Interrupted(Exception):
    """What a soft time limit or a signal raises inside a sleep."""


@pytest.fixture(autouse=True)
def _not_stopping() -> object:
    yield
    call_context.stopping.clear()


def test_every_call_names_the_job_it_is_made_for(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock)
    with call_context.calls_for("job-1", start_by=None), governor.slot("upload", TENANT):
        pass
    with governor.slot("status", TENANT):  # outside a step: no job
        pass

    assert [(row.kind, row.job_id) for row in ledger(engine)] == [
        ("upload", "job-1"),
        ("status", None),
    ]


def test_no_wait_runs_past_the_steps_last_moment_to_start_a_call(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, max_concurrency=1, min_interval=0.0, max_wait=30.0)
    start = clock()
    with governor.slot("upload", TENANT), contextlib.ExitStack() as step:
        step.enter_context(call_context.calls_for("job-2", start_by=start + timedelta(seconds=2)))
        with pytest.raises(SlotWaitTimeout), governor.slot("upload", TENANT):
            pass

    assert clock() - start <= timedelta(seconds=2.5), "not the 30 s of max_wait"
    assert len(ledger(engine)) == 1


def test_a_stopping_process_stops_waiting_at_once(engine: Engine, clock: FakeClock) -> None:
    governor = make_governor(engine, clock, max_concurrency=1, min_interval=0.0, max_wait=30.0)
    start = clock()
    with governor.slot("upload", TENANT):
        call_context.stopping.set()
        with pytest.raises(WorkerStopping), governor.slot("upload", TENANT):
            pass

    assert clock() == start
    assert len(ledger(engine)) == 1


def test_a_slot_whose_start_is_never_reached_is_given_back_at_once(
    engine: Engine, clock: FakeClock
) -> None:
    governor = make_governor(engine, clock, min_interval=0.6)
    with governor.slot("upload", TENANT):
        pass  # the next start is 0.6 s away: the next grant sleeps to it with its slot held

    def interrupted_sleep(seconds: float) -> None:
        raise Interrupted

    governor = make_governor(engine, clock, min_interval=0.6, sleep=interrupted_sleep)
    with pytest.raises(Interrupted), governor.slot("upload", TENANT):
        pass

    assert all(row.holder is None for row in slots(engine)), "no slot waits for its lease"
