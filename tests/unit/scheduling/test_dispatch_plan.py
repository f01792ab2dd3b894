"""`plan_dispatch` on SQLite and PostgreSQL: the room in the broker, what is due, the order
of work, and which tenants get work (an open window or a fresh grant) or wait for one;
`hold_dispatcher_lease`: one dispatcher acts at a time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from models import JobState, Priority
from scheduling.dispatcher import DispatchPlan, hold_dispatcher_lease, plan_dispatch
from scheduling.policy.dispatch import WorkClass
from scheduling.token_windows import token_pace
from tests.plugins.dispatch_fixtures import (
    NOW,
    TENANT,
    Fleet,
    add_job,
    grants,
    make_fleet,
    open_window,
    spend_tokens,
)

OTHER = "1234567"
HOUR = timedelta(hours=1)


@pytest.fixture
def fleet(db_engine: Engine, tmp_path: Path) -> Fleet:
    """Room for 4 (concurrency 2, ready factor 2); TENANT's window is open for an hour."""
    fleet = make_fleet(db_engine, tmp_path / "data")
    open_window(fleet.engine, TENANT, expires_at=NOW + HOUR)
    return fleet


def plan(fleet: Fleet) -> DispatchPlan:
    return plan_dispatch(fleet.engine, fleet.settings, fleet.now[0])


def chosen_ids(fleet: Fleet) -> list[str]:
    return [candidate.job_id for candidate in plan(fleet).chosen]


def pace_spent(fleet: Fleet, *, leave: int = 0) -> None:
    """Spend the month's tokens up to the pace line, leaving `leave` requests allowed."""
    with fleet.engine.connect() as connection:
        pace = token_pace(connection, fleet.settings, fleet.now[0])
    spend_tokens(fleet.engine, int(pace.line + pace.burst) + 1 - leave, at=fleet.now[0])


# --- the room -----------------------------------------------------------------------------


def test_the_room_is_the_target_less_what_the_broker_holds_unclaimed(fleet: Fleet) -> None:
    stale = NOW - timedelta(seconds=fleet.settings.republish_after + 1)
    for minutes in (1, 2, 3):
        add_job(fleet.engine, published_at=NOW - timedelta(minutes=minutes))
    add_job(fleet.engine, published_at=stale)  # its message is given up: due again
    add_job(
        fleet.engine,
        state=JobState.POLLING,
        published_at=None,
        lease_owner="worker:1",
        lease_expires_at=NOW + HOUR,
    )  # claimed: no longer in the broker
    due = [add_job(fleet.engine, created_at=NOW - timedelta(minutes=n)) for n in range(10, 0, -1)]

    decided = plan(fleet)

    assert decided.room == 1
    assert [c.job_id for c in decided.chosen] == [due[0]]


def test_a_full_broker_leaves_no_room_and_reads_nothing(fleet: Fleet) -> None:
    for _ in range(4):
        add_job(fleet.engine, published_at=NOW)
    add_job(fleet.engine)

    decided = plan(fleet)

    assert decided.room == 0
    assert decided.chosen == []
    assert decided.grants == []


def test_the_ready_factor_and_concurrency_set_the_room(db_engine: Engine, tmp_path: Path) -> None:
    fleet = make_fleet(db_engine, tmp_path / "d", max_concurrency=3, dispatch_ready_factor=3)
    open_window(fleet.engine, TENANT, expires_at=NOW + HOUR)
    for n in range(12):
        add_job(fleet.engine, created_at=NOW - timedelta(seconds=n))

    decided = plan(fleet)

    assert decided.room == 9
    assert len(decided.chosen) == 9


# --- what is due, in which order ----------------------------------------------------------


def test_polls_go_before_live_uploads_before_backfill_and_retries(fleet: Fleet) -> None:
    backfill = add_job(fleet.engine, priority=Priority.BACKFILL, created_at=NOW - 3 * HOUR)
    retry = add_job(
        fleet.engine, attempts=1, created_at=NOW - 4 * HOUR, not_before=NOW - timedelta(minutes=1)
    )
    live = add_job(fleet.engine, created_at=NOW - timedelta(minutes=5))
    poll = add_job(fleet.engine, state=JobState.POLLING, next_poll_at=NOW - timedelta(seconds=1))

    decided = plan(fleet)

    assert [c.job_id for c in decided.chosen] == [poll, live, backfill, retry]
    assert [c.work for c in decided.chosen] == [
        WorkClass.POLL,
        WorkClass.LIVE_UPLOAD,
        WorkClass.BACKFILL_OR_RETRY,
        WorkClass.BACKFILL_OR_RETRY,
    ]
    assert decided.states == {
        poll: JobState.POLLING,
        live: JobState.QUEUED,
        backfill: JobState.QUEUED,
        retry: JobState.QUEUED,
    }


def test_work_that_is_not_due_or_has_a_live_message_is_not_chosen(fleet: Fleet) -> None:
    add_job(fleet.engine, not_before=NOW + timedelta(seconds=1))  # in backoff
    add_job(fleet.engine, state=JobState.POLLING, next_poll_at=NOW + timedelta(seconds=1))
    add_job(
        fleet.engine,
        state=JobState.POLLING,
        lease_owner="worker:2",
        lease_expires_at=NOW + timedelta(seconds=30),
    )  # being polled
    add_job(fleet.engine, state=JobState.UPLOADING, lease_owner="w", lease_expires_at=NOW + HOUR)
    add_job(fleet.engine, state=JobState.COMPLETE)
    add_job(fleet.engine, published_at=NOW - timedelta(minutes=5))  # its message waits
    add_job(fleet.engine, state=JobState.POLLING, published_at=NOW - timedelta(minutes=5))
    due_now = add_job(fleet.engine, not_before=NOW)

    assert chosen_ids(fleet) == [due_now]


def test_a_stale_message_is_sent_again_and_a_fresh_one_is_not(fleet: Fleet) -> None:
    republish_after = timedelta(seconds=fleet.settings.republish_after)
    fresh = add_job(fleet.engine, published_at=NOW - republish_after + timedelta(seconds=1))
    stale = add_job(fleet.engine, published_at=NOW - republish_after - timedelta(seconds=1))
    stale_poll = add_job(
        fleet.engine,
        state=JobState.POLLING,
        next_poll_at=NOW - republish_after - timedelta(seconds=1),
        published_at=NOW - republish_after - timedelta(seconds=1),
    )

    ids = chosen_ids(fleet)

    assert sorted(ids) == sorted([stale, stale_poll])
    assert fresh not in ids


# --- tenants and their delivery windows ---------------------------------------------------


def test_a_tenant_without_a_window_waits_while_the_pace_says_no(fleet: Fleet) -> None:
    pace_spent(fleet)
    mine = add_job(fleet.engine)
    theirs = [add_job(fleet.engine, tenant=OTHER) for _ in range(2)]

    decided = plan(fleet)

    assert [c.job_id for c in decided.chosen] == [mine]
    assert decided.grants == []
    assert decided.waiting_for_window == {OTHER: 2}
    assert grants(fleet.engine) == {}
    assert not set(theirs) & {c.job_id for c in decided.chosen}


def test_a_tenant_without_a_window_gets_a_grant_when_the_pace_says_yes(fleet: Fleet) -> None:
    theirs = add_job(fleet.engine, tenant=OTHER)

    decided = plan(fleet)

    assert [g.tenant_id for g in decided.grants] == [OTHER]
    assert [c.job_id for c in decided.chosen] == [theirs]
    assert decided.waiting_for_window == {}
    assert grants(fleet.engine)[OTHER].used_at is None

    again = plan(fleet)  # the grant is outstanding: the window counts as open, no second one
    assert again.grants == []
    assert [c.job_id for c in again.chosen] == [theirs]


def test_the_only_window_the_pace_allows_goes_to_live_work(fleet: Fleet) -> None:
    pace_spent(fleet, leave=1)
    backfill = add_job(
        fleet.engine, tenant="2000002", priority=Priority.BACKFILL, created_at=NOW - 5 * HOUR
    )
    live = add_job(fleet.engine, tenant="3000003", created_at=NOW - timedelta(minutes=1))

    decided = plan(fleet)

    assert [g.tenant_id for g in decided.grants] == ["3000003"]
    assert [c.job_id for c in decided.chosen] == [live]
    assert decided.waiting_for_window == {"2000002": 1}
    assert backfill not in {c.job_id for c in decided.chosen}


def test_among_backfill_the_longest_waiting_tenant_gets_the_window(fleet: Fleet) -> None:
    pace_spent(fleet, leave=1)
    add_job(fleet.engine, tenant="2000002", priority=Priority.BACKFILL, created_at=NOW - HOUR)
    oldest = add_job(
        fleet.engine, tenant="3000003", priority=Priority.BACKFILL, created_at=NOW - 2 * HOUR
    )

    decided = plan(fleet)

    assert [g.tenant_id for g in decided.grants] == ["3000003"]
    assert [c.job_id for c in decided.chosen] == [oldest]


def test_a_token_inside_the_refresh_margin_closes_the_window(fleet: Fleet) -> None:
    pace_spent(fleet)
    margin = timedelta(seconds=fleet.settings.token_refresh_margin)
    open_window(fleet.engine, OTHER, expires_at=NOW + margin - timedelta(seconds=1))
    add_job(fleet.engine, tenant=OTHER)

    decided = plan(fleet)

    assert decided.chosen == []
    assert decided.waiting_for_window == {OTHER: 1}


def test_in_the_last_day_live_work_gets_a_window_from_the_reserve(
    db_engine: Engine, tmp_path: Path
) -> None:
    fleet = make_fleet(db_engine, tmp_path / "d")
    fleet.now[0] = NOW.replace(day=31, hour=12)
    pace_spent(fleet)  # line and burst spent: only the reserve is left
    backfill = add_job(fleet.engine, tenant=OTHER, priority=Priority.BACKFILL, created_at=NOW)
    live = add_job(fleet.engine, tenant="3000003", created_at=NOW)

    decided = plan(fleet)

    assert [g.tenant_id for g in decided.grants] == ["3000003"]
    assert [c.job_id for c in decided.chosen] == [live]
    assert backfill not in {c.job_id for c in decided.chosen}


# --- the dispatcher's lease ---------------------------------------------------------------


def test_one_dispatcher_holds_the_lease_at_a_time(db_engine: Engine) -> None:
    assert hold_dispatcher_lease(db_engine, "a:1", now=NOW, seconds=5)
    assert not hold_dispatcher_lease(db_engine, "b:2", now=NOW + timedelta(seconds=1), seconds=5)
    assert hold_dispatcher_lease(db_engine, "a:1", now=NOW + timedelta(seconds=4), seconds=5)
    # renewed at +4 until +9: b still waits at +8
    assert not hold_dispatcher_lease(db_engine, "b:2", now=NOW + timedelta(seconds=8), seconds=5)


def test_a_lapsed_lease_is_taken_over(db_engine: Engine) -> None:
    assert hold_dispatcher_lease(db_engine, "a:1", now=NOW, seconds=5)

    assert hold_dispatcher_lease(db_engine, "b:2", now=NOW + timedelta(seconds=5), seconds=5)
    assert not hold_dispatcher_lease(db_engine, "a:1", now=NOW + timedelta(seconds=6), seconds=5)
