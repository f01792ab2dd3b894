"""`choose_work`: polls, then live uploads, then backfill and retries; tenants share each
class by smooth weighted round robin; the oldest work of a tenant goes first; never more
than the room. `room_in_broker`: a few times the fleet's concurrency, less what waits."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from scheduling.policy.dispatch import Candidate, WorkClass, choose_work, room_in_broker

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
BIG = "1000001"  # sorts before SMALL: a tie between the two goes to BIG
SMALL = "4028868"

_ids = itertools.count()


def work(tenant: str, kind: WorkClass, minutes: float = 0.0) -> Candidate:
    return Candidate(f"job-{next(_ids)}", tenant, kind, T0 + timedelta(minutes=minutes))


def backlog(
    tenant: str, count: int, kind: WorkClass = WorkClass.BACKFILL_OR_RETRY
) -> list[Candidate]:
    return [work(tenant, kind, minutes=n) for n in range(count)]


def test_polls_go_first_then_live_uploads_then_backfill_and_retries() -> None:
    candidates = [
        *backlog(BIG, 3, WorkClass.BACKFILL_OR_RETRY),
        *backlog(SMALL, 2, WorkClass.LIVE_UPLOAD),
        *backlog(BIG, 2, WorkClass.POLL),
        *backlog(SMALL, 1, WorkClass.POLL),
        *backlog(SMALL, 2, WorkClass.BACKFILL_OR_RETRY),
    ]
    random.Random(7).shuffle(candidates)

    chosen = choose_work(candidates, room=100)

    assert [c.work for c in chosen] == [WorkClass.POLL] * 3 + [WorkClass.LIVE_UPLOAD] * 2 + [
        WorkClass.BACKFILL_OR_RETRY
    ] * 5
    assert {c.job_id for c in chosen} == {c.job_id for c in candidates}


def test_a_small_room_is_filled_from_the_most_urgent_class() -> None:
    polls = backlog(SMALL, 2, WorkClass.POLL)
    live = backlog(BIG, 2, WorkClass.LIVE_UPLOAD)
    candidates = [*backlog(BIG, 5), *live, *polls]

    assert choose_work(candidates, room=3) == [*polls, live[0]]


def test_a_huge_backfill_does_not_delay_another_tenants_live_event() -> None:
    live = work(SMALL, WorkClass.LIVE_UPLOAD, minutes=10_001)  # the newest of all

    assert choose_work([*backlog(BIG, 10_000), live], room=1) == [live]


@pytest.mark.parametrize(
    "kind", [WorkClass.LIVE_UPLOAD, WorkClass.BACKFILL_OR_RETRY], ids=["live", "retry"]
)
def test_ten_thousand_jobs_of_one_tenant_delay_another_tenant_by_one_pick_at_most(
    kind: WorkClass,
) -> None:
    """Within one class: a bulk import sent as live events, or another tenant's retry behind
    a backfill. (Across passes: `tests/unit/worker/test_dispatcher.py`.)"""
    other = work(SMALL, kind, minutes=10_001)  # newer than every job of the big tenant

    assert other in choose_work([*backlog(BIG, 10_000, kind), other], room=2)


def test_tenants_share_a_class_one_pick_each_within_a_pass() -> None:
    chosen = choose_work([*backlog(BIG, 50), *backlog(SMALL, 3)], room=8)

    assert [c.tenant_id for c in chosen] == [BIG, SMALL] * 3 + [BIG, BIG]


def test_weights_are_honoured_two_to_one_within_a_pass() -> None:
    weights = {BIG: 2.0, SMALL: 1.0}

    chosen = choose_work([*backlog(BIG, 30), *backlog(SMALL, 30)], room=30, weights=weights)

    tenants = [c.tenant_id for c in chosen]
    assert Counter(tenants) == {BIG: 20, SMALL: 10}
    for start in range(0, 30, 3):  # smooth: every three picks hold two of one, one of other
        assert Counter(tenants[start : start + 3]) == {BIG: 2, SMALL: 1}


def test_a_tenant_not_named_weighs_one() -> None:
    chosen = choose_work([*backlog(BIG, 30), *backlog(SMALL, 30)], room=30, weights={SMALL: 2.0})

    assert Counter(c.tenant_id for c in chosen) == {SMALL: 20, BIG: 10}


def test_the_oldest_work_of_a_tenant_goes_first() -> None:
    jobs = backlog(SMALL, 20)
    shuffled = list(jobs)
    random.Random(3).shuffle(shuffled)

    assert choose_work(shuffled, room=20) == jobs


def test_equal_ages_are_ordered_by_job_id() -> None:
    same_time = [Candidate(job_id, SMALL, WorkClass.POLL, T0) for job_id in ("c", "a", "b")]

    assert [c.job_id for c in choose_work(same_time, room=3)] == ["a", "b", "c"]


@pytest.mark.parametrize(("room", "expected"), [(0, 0), (-3, 0), (1, 1), (7, 7), (50, 12)])
def test_never_more_than_the_room(room: int, expected: int) -> None:
    candidates = [
        *backlog(BIG, 4, WorkClass.POLL),
        *backlog(SMALL, 4, WorkClass.LIVE_UPLOAD),
        *backlog(BIG, 4),
    ]

    assert len(choose_work(candidates, room)) == expected


def test_nothing_waiting_chooses_nothing() -> None:
    assert choose_work([], room=5) == []


@pytest.mark.parametrize(
    ("concurrency", "factor", "in_broker", "room"),
    [
        (3, 2.0, 0, 6),
        (3, 2.0, 4, 2),
        (3, 2.0, 6, 0),
        (3, 2.0, 9, 0),  # more than the target (a setting lowered): nothing more, not less
        (1, 1.0, 0, 1),
        (4, 1.5, 1, 5),
    ],
)
def test_the_room_is_a_few_times_the_concurrency_less_what_waits(
    concurrency: int, factor: float, in_broker: int, room: int
) -> None:
    assert (
        room_in_broker(fleet_concurrency=concurrency, ready_factor=factor, in_broker=in_broker)
        == room
    )
