"""`TokenPace`: under the line every token request is allowed at once; above it requests
follow the line, so the budget lasts the budget window and is never spent whole; the
reserve is for live work in the last stretch only. `most_urgent`: live first, then oldest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduling.policy.pacing import TenantDemand, TokenPace, most_urgent
from scheduling.policy.windows import budget_window

MARCH = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)


def pace(
    used: int,
    now: datetime,
    *,
    budget: int = 400,
    reserve: float = 0.1,
    window: tuple[datetime, datetime] = MARCH,
) -> TokenPace:
    return TokenPace(
        budget=budget,
        used=used,
        reserve_fraction=reserve,
        window_start=window[0],
        window_end=window[1],
        now=now,
    )


def at_fraction(fraction: float, window: tuple[datetime, datetime] = MARCH) -> datetime:
    return window[0] + (window[1] - window[0]) * fraction


def simulate(
    *,
    budget: int,
    window: tuple[datetime, datetime],
    step: timedelta,
    live: bool,
    reserve: float = 0.1,
) -> list[tuple[TokenPace, int]]:
    """Demand that never ends (every tenant always waits): at each tick of the fake clock the
    pacer grants as many windows as it allows. Returns (pace before the tick, tokens after).

    A request is allowed while the count is under line + burst, so the count after it stays
    under line + burst + 1 (the line's ceiling): B - R + burst when the line is whole."""
    used = 0
    seen = []
    now = window[0]
    while now < window[1]:
        before = pace(used, now, budget=budget, reserve=reserve, window=window)
        while pace(used, now, budget=budget, reserve=reserve, window=window).allows(live=live):
            used += 1
        seen.append((before, used))
        now += step
    return seen


# --- the numbers --------------------------------------------------------------------------


def test_the_reserve_burst_and_paced_budget_of_a_month() -> None:
    p = pace(0, MARCH[0])
    assert p.reserve == 40
    assert p.paced_budget == 360
    assert p.burst == 12, "about a day's share of a 31-day month, less than the reserve"
    assert p.burst < p.reserve


@pytest.mark.parametrize(
    ("budget", "fraction", "reserve"), [(2, 0.1, 1), (8, 0.1, 1), (400, 0.0, 0), (10, 0.99, 9)]
)
def test_the_reserve_always_leaves_a_token_to_pace(
    budget: int, fraction: float, reserve: int
) -> None:
    assert pace(0, MARCH[0], budget=budget, reserve=fraction).reserve == reserve


def test_the_line_grows_evenly_over_the_window() -> None:
    assert pace(0, MARCH[0]).line == 0
    assert pace(0, at_fraction(0.5)).line == pytest.approx(180)
    assert pace(0, MARCH[1]).line == 360
    assert pace(0, MARCH[1] + timedelta(days=3)).line == 360


# --- plentiful budget ---------------------------------------------------------------------


def test_a_plentiful_budget_allows_every_request_at_once() -> None:
    for fraction in (0.0, 0.2, 0.5, 0.9):
        now = at_fraction(fraction)
        for used in range(int(pace(0, now).line)):
            assert pace(used, now).allows(live=False), (fraction, used)
            assert pace(used, now).allows(live=True), (fraction, used)


def test_a_burst_at_the_start_of_the_window_is_allowed() -> None:
    now = MARCH[0]
    assert [pace(used, now).allows(live=False) for used in range(14)] == [True] * 12 + [False] * 2


# --- demand above the line ----------------------------------------------------------------


def test_demand_above_the_line_follows_the_line_for_a_month() -> None:
    ticks = simulate(budget=400, window=MARCH, step=STEP, live=False)

    for before, used in ticks:
        assert used < before.line + before.burst + 1, before.now
        if before.now - MARCH[0] >= timedelta(days=1):
            assert used >= before.line - 1, f"fell behind the line at {before.now}"
    final = ticks[-1][1]
    assert final == 400 - 40 + 12, "budget - reserve + burst, and not one more"
    assert final < 400


def test_live_demand_spends_the_reserve_only_in_the_last_day_and_never_the_last_token() -> None:
    ticks = simulate(budget=400, window=MARCH, step=STEP, live=True)
    last_day = MARCH[1] - timedelta(days=1)

    for before, used in ticks:
        if before.now < last_day:
            assert used < before.line + before.burst + 1, before.now
    assert max(used for _, used in ticks) == 399, "down to one token, never the budget"


def test_the_reserve_is_for_live_work_in_the_last_stretch() -> None:
    used = 400 - 40 + 12  # the line and the burst are spent
    in_last_day = MARCH[1] - timedelta(hours=20)
    before_it = MARCH[1] - timedelta(days=2)

    assert pace(used, in_last_day).in_last_stretch
    assert pace(used, in_last_day).allows(live=True)
    assert not pace(used, in_last_day).allows(live=False)
    assert not pace(used, before_it).in_last_stretch
    assert not pace(used, before_it).allows(live=True)
    assert not pace(399, in_last_day).allows(live=True), "the last token is never paced away"


# --- short budget windows (time-scaled sandboxes and tests) -------------------------------


def test_a_short_window_is_a_fixed_slice_of_utc_time() -> None:
    now = datetime(2026, 3, 10, 9, 7, 42, tzinfo=UTC)
    start, end = budget_window(now, "Europe/Amsterdam", 300)
    assert start <= now < end
    assert end - start == timedelta(seconds=300)
    assert start.timestamp() % 300 == 0
    assert budget_window(end, "UTC", 300)[0] == end
    assert budget_window(now, "UTC", None) == MARCH


@pytest.mark.parametrize("live", [False, True], ids=["backfill", "live"])
def test_a_short_window_with_a_small_budget_never_spends_the_whole_budget(live: bool) -> None:
    window = budget_window(datetime(2026, 3, 10, 9, 7, tzinfo=UTC), "UTC", 300)
    ticks = simulate(budget=8, window=window, step=timedelta(seconds=1), live=live)
    first = ticks[0][0]
    assert (first.reserve, first.burst) == (1, 1)
    last_stretch = window[1] - timedelta(seconds=10)  # a thirtieth of the window

    for before, used in ticks:
        assert used <= 7
        if not live or before.now < last_stretch:
            assert used < before.line + before.burst + 1, before.now
    assert ticks[-1][1] == 7
    early = [used for before, used in ticks if before.now < window[0] + timedelta(seconds=150)]
    assert max(early) <= 5, "half the window: about half the paced budget, plus the burst"


def test_a_short_window_stretch_is_a_thirtieth_of_it() -> None:
    window = (MARCH[0], MARCH[0] + timedelta(seconds=300))
    assert pace(0, window[1] - timedelta(seconds=10), window=window).in_last_stretch
    assert not pace(0, window[1] - timedelta(seconds=11), window=window).in_last_stretch


# --- what operators see -------------------------------------------------------------------


def test_per_day_is_what_the_line_allows_from_now_on() -> None:
    now = MARCH[1] - timedelta(days=10)
    assert pace(100, now).per_day() == pytest.approx((400 - 100 - 40) / 10)
    assert pace(380, now).per_day() == 0.0, "past the paced budget: nothing more a day"
    assert pace(0, MARCH[1]).per_day() == 0.0


def test_next_allowed_at_is_now_while_the_pace_allows() -> None:
    now = at_fraction(5.5 / 360)  # the line at 5.5 tokens: 17 < 5.5 + 12
    assert pace(17, now).allows(live=False)
    assert pace(17, now).next_allowed_at() == now


def test_next_allowed_at_is_when_the_pace_allows_the_next_request() -> None:
    now = at_fraction(0.25)  # the line at 90
    used = 90 + 12 + 3  # three tokens above line + burst
    token_interval = (MARCH[1] - MARCH[0]) / 360
    assert not pace(used, now).allows(live=False)

    at = pace(used, now).next_allowed_at()

    assert at > now
    assert pace(used, at + timedelta(seconds=1)).allows(live=False)
    assert not pace(used, at - token_interval / 2).allows(live=False), (
        "the pace allowed the request well before next_allowed_at said"
    )


def test_next_allowed_at_ahead_counts_the_windows_granted_before() -> None:
    now = at_fraction(0.25)
    used = 90 + 12 + 3
    for ahead in range(4):
        assert (
            pace(used, now).next_allowed_at(ahead=ahead)
            == pace(used + ahead, now).next_allowed_at()
        )
    assert pace(used, now).next_allowed_at(ahead=1) > pace(used, now).next_allowed_at()


def test_next_allowed_at_past_the_paced_budget_is_the_end_of_the_window() -> None:
    assert pace(390, at_fraction(0.5)).next_allowed_at() == MARCH[1]


# --- who gets a window ----------------------------------------------------------------------


def test_live_tenants_get_windows_first_then_the_longest_waiting() -> None:
    t0 = MARCH[0]
    demands = [
        TenantDemand("b-old-backfill", live=False, waiting_since=t0),
        TenantDemand("c-new-live", live=True, waiting_since=t0 + timedelta(hours=2)),
        TenantDemand("d-newer-backfill", live=False, waiting_since=t0 + timedelta(hours=1)),
        TenantDemand("a-old-live", live=True, waiting_since=t0 + timedelta(hours=1)),
    ]

    ordered = [demand.tenant_id for demand in most_urgent(demands)]

    assert ordered == ["a-old-live", "c-new-live", "b-old-backfill", "d-newer-backfill"]
