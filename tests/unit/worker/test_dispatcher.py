"""`dispatch_once` on SQLite and PostgreSQL, with the fake broker: it publishes the work the
plan chose, in order, and marks it; never more than the room; one dispatcher acts at a
time; a dead broker stops the pass and loses nothing; tenants share fairly pass after pass."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from models import JobState, Priority
from scheduling.deferrals import SlotWaitTimeout
from scheduling.token_windows import token_pace
from tests.plugins.dispatch_fixtures import (
    NOW,
    TENANT,
    Fleet,
    add_job,
    make_fleet,
    open_window,
    spend_tokens,
)
from tests.unit.worker.conftest import Harness, receipt, status
from worker.dispatcher import DispatcherLoop, DispatchReport, lease_seconds
from worker.poll_step import poll_job
from worker.upload_step import upload_job

BIG = "1000001"  # sorts before TENANT: a tie between the two goes to BIG
HOUR = timedelta(hours=1)


@pytest.fixture
def fleet(db_engine: Engine, tmp_path: Path) -> Fleet:
    """Room for 4 (concurrency 2, ready factor 2); TENANT's window is open for a day."""
    fleet = make_fleet(db_engine, tmp_path / "data")
    open_window(fleet.engine, TENANT, expires_at=NOW + 24 * HOUR)
    return fleet


def test_a_pass_publishes_the_chosen_work_in_order_and_marks_it(fleet: Fleet) -> None:
    backfill = add_job(fleet.engine, priority=Priority.BACKFILL, created_at=NOW - HOUR)
    live = add_job(fleet.engine, created_at=NOW - timedelta(minutes=1))
    poll = add_job(fleet.engine, state=JobState.POLLING, next_poll_at=NOW)

    report = fleet.dispatch()

    assert report == DispatchReport(room=4, uploads=2, polls=1)
    assert str(report) == "dispatch: room=4, uploads=2, polls=1"
    assert fleet.publisher.sent == [
        ("poll", poll),
        ("upload", live),
        ("upload", backfill),
    ]
    for job_id in (poll, live, backfill):
        assert fleet.job(job_id).published_at == NOW

    fleet.advance(1)
    again = fleet.dispatch()
    assert (again.uploads, again.polls, again.room) == (0, 0, 1)
    assert len(fleet.publisher.sent) == 3, "nothing is published twice"


def test_an_idle_pass_says_so(fleet: Fleet) -> None:
    report = fleet.dispatch()
    assert report == DispatchReport(room=4)
    assert str(report) == "dispatch: room=4"
    assert fleet.publisher.calls == 0


def test_the_room_bounds_every_pass(db_engine: Engine, tmp_path: Path) -> None:
    fleet = make_fleet(db_engine, tmp_path / "d", max_concurrency=1)  # room 2
    open_window(fleet.engine, TENANT, expires_at=NOW + 24 * HOUR)
    jobs = [add_job(fleet.engine, created_at=NOW - timedelta(minutes=n)) for n in range(5, 0, -1)]

    assert fleet.dispatch().uploads == 2
    assert fleet.dispatch().uploads == 0, "the broker holds two unclaimed: no room"
    fleet.claim(jobs[0])
    assert fleet.dispatch().uploads == 1
    for job_id in jobs[1:3]:
        fleet.claim(job_id)
    assert fleet.dispatch().uploads == 2
    assert fleet.published_ids() == jobs, "each once, oldest first"


def test_a_dead_broker_stops_the_pass_and_loses_nothing(fleet: Fleet) -> None:
    poll = add_job(fleet.engine, state=JobState.POLLING, next_poll_at=NOW)
    queued = [add_job(fleet.engine, created_at=NOW - timedelta(minutes=n)) for n in (3, 2, 1)]
    fleet.publisher.fail_after = 1

    report = fleet.dispatch()

    assert report.broker_down is True
    assert (report.polls, report.uploads) == (1, 0)
    assert fleet.publisher.refused == 1, "it stopped at the first refusal"
    assert "broker_down=True" in str(report)
    assert fleet.job(poll).published_at == NOW
    assert [fleet.job(job_id).published_at for job_id in queued] == [None, None, None]

    fleet.publisher.down = True
    fleet.advance(1)
    assert fleet.dispatch().broker_down is True
    assert [fleet.job(job_id).published_at for job_id in queued] == [None, None, None]

    fleet.publisher.down = False
    fleet.publisher.fail_after = None
    fleet.advance(1)
    back = fleet.dispatch()
    assert (back.broker_down, back.uploads) == (False, 3)
    assert fleet.published_ids() == [poll, *queued], "all of it, each once"


def test_only_the_lease_holder_dispatches(fleet: Fleet) -> None:
    first = add_job(fleet.engine)
    assert fleet.dispatch(owner="a:1").uploads == 1
    second = add_job(fleet.engine)
    fleet.advance(1)

    report = fleet.dispatch(owner="b:2")

    assert report == DispatchReport(leader=False)
    assert str(report) == "dispatch: another dispatcher holds the lease"
    assert fleet.published_ids() == [first]

    fleet.advance(lease_seconds(fleet.settings))  # a:1 stopped renewing
    assert fleet.dispatch(owner="b:2").uploads == 1
    assert fleet.published_ids() == [first, second]
    assert fleet.dispatch(owner="a:1").leader is False


def test_the_lease_lasts_a_few_passes() -> None:
    from config import Settings

    assert lease_seconds(Settings(_env_file=None)) == 5.0  # type: ignore[call-arg]
    assert lease_seconds(Settings(dispatch_interval=3, _env_file=None)) == 15.0  # type: ignore[call-arg]


def test_a_tenant_waits_for_a_window_until_the_pace_allows_one(fleet: Fleet) -> None:
    with fleet.engine.connect() as connection:
        pace = token_pace(connection, fleet.settings, NOW)
    spend_tokens(fleet.engine, int(pace.line + pace.burst) + 1, at=NOW)
    mine = add_job(fleet.engine)
    theirs = add_job(fleet.engine, tenant=BIG)

    report = fleet.dispatch()

    assert (report.uploads, report.windows_granted, report.tenants_waiting_for_a_window) == (
        1,
        0,
        1,
    )
    assert fleet.published_ids() == [mine]
    fleet.claim(mine)

    token_interval = (pace.window_end - pace.window_start) / pace.paced_budget
    fleet.advance(token_interval.total_seconds() * 1.5)
    later = fleet.dispatch()

    assert (later.uploads, later.windows_granted, later.tenants_waiting_for_a_window) == (1, 1, 0)
    assert fleet.published_ids() == [mine, theirs]


def test_weights_share_a_pass_two_to_one(db_engine: Engine, tmp_path: Path) -> None:
    fleet = make_fleet(db_engine, tmp_path / "d", max_concurrency=15, tenant_weights=f"{TENANT}:2")
    for tenant in (TENANT, BIG):
        open_window(fleet.engine, tenant, expires_at=NOW + 24 * HOUR)
        for n in range(40):
            add_job(fleet.engine, tenant=tenant, created_at=NOW - timedelta(minutes=n))

    assert fleet.dispatch().uploads == 30

    tenants = Counter(fleet.job(job_id).tenant_id for job_id in fleet.published_ids())
    assert tenants == {TENANT: 20, BIG: 10}


def one_message_at_a_time(fleet: Fleet, passes: int) -> list[str]:
    """Passes of room 1 (the broker full but for one message), a worker taking each message
    before the next pass: the tenants of what was published, in order."""
    for _ in range(passes):
        fleet.dispatch()
        for job_id in fleet.published_ids()[-1:]:
            fleet.claim(job_id)
        fleet.advance(1)
    return [fleet.job(job_id).tenant_id for job_id in fleet.published_ids()]


@pytest.fixture
def room_for_one(db_engine: Engine, tmp_path: Path) -> Fleet:
    fleet = make_fleet(db_engine, tmp_path / "d", max_concurrency=1, dispatch_ready_factor=1)
    for tenant in (TENANT, BIG):
        open_window(fleet.engine, tenant, expires_at=NOW + 24 * HOUR)
    return fleet


def test_a_backlog_delays_another_tenants_retry_by_one_pass_at_most(room_for_one: Fleet) -> None:
    fleet = room_for_one
    for n in range(30):
        add_job(
            fleet.engine,
            tenant=BIG,
            priority=Priority.BACKFILL,
            created_at=NOW - HOUR + n * timedelta(seconds=1),
        )
    retry = add_job(fleet.engine, attempts=1, not_before=NOW)  # a live event's second attempt

    tenants = one_message_at_a_time(fleet, passes=2)

    assert TENANT in tenants, f"two passes went to the backlog: {tenants}"
    assert retry in fleet.published_ids()


def test_weights_hold_pass_after_pass(room_for_one: Fleet) -> None:
    fleet = room_for_one
    fleet.settings.tenant_weights = f"{TENANT}:2"
    for tenant in (TENANT, BIG):
        for n in range(30):
            add_job(
                fleet.engine,
                tenant=tenant,
                priority=Priority.BACKFILL,
                created_at=NOW - timedelta(minutes=n),
            )

    tenants = Counter(one_message_at_a_time(fleet, passes=30))

    assert tenants.total() == 30
    assert 19 <= tenants[TENANT] <= 21, f"two picks to one, pass after pass: {tenants}"


# --- the loop ------------------------------------------------------------------------------


def _loop(fleet: Fleet) -> DispatcherLoop:
    return DispatcherLoop(
        fleet.engine, fleet.settings, fleet.publisher, owner="loop:1", clock=fleet.clock
    )


def test_once_is_one_pass(fleet: Fleet) -> None:
    job_id = add_job(fleet.engine)

    _loop(fleet).run(once=True)

    assert fleet.published_ids() == [job_id]
    assert fleet.job(job_id).published_at == NOW


def test_the_loop_outlives_a_failing_pass_and_stops_when_told(fleet: Fleet) -> None:
    job_id = add_job(fleet.engine)
    failures = [RuntimeError("the database went away mid-pass")]

    def first_one_fails(kind: str, job_id: str) -> None:
        if failures:
            raise failures.pop()

    fleet.publisher.deliver = first_one_fails
    loop = _loop(fleet)
    thread = loop.start_thread()
    try:
        # Until the second send: the failing pass marks the job before its send fails
        # and then unmarks it, so a mark seen before that proves nothing.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (
            len(fleet.published_ids()) < 2 or fleet.job(job_id).published_at is None
        ):
            time.sleep(0.05)
    finally:
        loop.stop()
        thread.join(timeout=10)

    assert not thread.is_alive(), "stop() ends the loop"
    assert fleet.job(job_id).published_at is not None, "the next pass sent it"
    assert fleet.published_ids() == [job_id, job_id]


# --- a worker faster than the dispatcher's mark -------------------------------------------


def _worker_takes_each_message_at_once(h: Harness) -> list[str]:
    """The broker pushes each message to a worker that runs the step before the dispatcher
    has marked the job published (RabbitMQ and Redis deliver within a millisecond; on
    SQLite the mark waits for the step's lock). Returns the steps' outcomes."""
    outcomes: list[str] = []

    def run(kind: str, job_id: str) -> None:
        step = poll_job if kind == "poll" else upload_job
        outcomes.append(step(h.rt, job_id).action)

    h.publisher.deliver = run
    return outcomes


def test_a_poll_run_before_its_mark_still_gets_its_next_poll(h: Harness) -> None:
    job_id = h.polling_job(next_poll_at=h.now[0])
    outcomes = _worker_takes_each_message_at_once(h)
    h.client.status_answers.append(status("InProgress"))

    h.dispatch()

    assert len(outcomes) == 1
    assert outcomes[0].startswith("in progress; next poll in")
    next_poll_at = h.job(job_id).next_poll_at
    assert next_poll_at is not None
    h.now[0] = next_poll_at
    h.client.status_answers.append(status("Complete"))
    h.dispatch()
    assert outcomes[-1] == "complete", f"the next poll was never sent: {outcomes}"


def test_an_upload_deferred_before_its_mark_is_sent_again_when_due(h: Harness) -> None:
    h.enqueue()
    outcomes = _worker_takes_each_message_at_once(h)
    until = h.now[0] + timedelta(seconds=20)
    h.client.upload_answers.append(SlotWaitTimeout(until, "no slot in time"))

    h.dispatch()

    assert outcomes[0].startswith("deferred until")
    h.now[0] = until
    h.client.upload_answers.append(receipt())
    h.dispatch()
    assert outcomes[-1].startswith("uploaded"), f"never sent again: {outcomes}"
