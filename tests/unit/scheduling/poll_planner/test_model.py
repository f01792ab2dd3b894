"""The duration estimator and the plan as pure functions, pinned on known data."""

from __future__ import annotations

import itertools

import pytest

from scheduling.policy.poll_plan import DurationObservation, PollPlan, TicketDurationModel
from scheduling.policy.retry import PollSchedule


def exact(*durations: float) -> list[DurationObservation]:
    """Observations pinned almost exactly: in progress just before, complete at the value."""
    return [DurationObservation(d - 0.5, d) for d in durations]


def test_exact_observations_give_their_empirical_quantiles() -> None:
    model = TicketDurationModel.fit(exact(10, 20, 30, 40))
    assert [model.quantile(q) for q in (0.25, 0.5, 0.75, 1.0)] == pytest.approx([10, 20, 30, 40])


def test_cdf_is_linear_inside_an_innermost_interval() -> None:
    model = TicketDurationModel.fit([DurationObservation(10, 20)])
    assert model.cdf(15) == pytest.approx(0.5)


def test_interval_mass_goes_where_other_tickets_say_it_is() -> None:
    # Two tickets known done in (0, 40]; three pinned at 30..31: Turnbull puts all mass there.
    model = TicketDurationModel.fit(
        [DurationObservation(0, 40)] * 2 + [DurationObservation(30, 31)] * 3
    )
    assert model.cdf(30) == pytest.approx(0.0, abs=1e-4)


def test_censored_mixture_has_pinned_quantiles() -> None:
    observations = (
        [DurationObservation(0, 30)] * 20
        + [DurationObservation(30, 90)] * 60
        + [DurationObservation(90, 210)] * 20
    )
    model = TicketDurationModel.fit(observations)
    assert [model.quantile(q) for q in (0.1, 0.5, 0.9)] == pytest.approx([15, 60, 150])


def test_conditional_quantile_is_none_past_everything_seen() -> None:
    model = TicketDurationModel.fit(exact(10, 20))
    assert model.conditional_quantile(0.9, beyond=25) is None


def test_conditional_quantile_counts_only_tickets_still_running() -> None:
    model = TicketDurationModel.fit(exact(10, 20, 30, 40))
    assert model.conditional_quantile(0.5, beyond=20) == pytest.approx(30)


def test_observation_refuses_an_empty_interval() -> None:
    with pytest.raises(ValueError, match="lower < upper"):
        DurationObservation(30, 30)


def spread_model() -> TicketDurationModel:
    return TicketDurationModel.fit(exact(*range(5, 121, 5)))


def test_cold_start_uses_the_settings_first_delay() -> None:
    plan = PollPlan(fallback=PollSchedule(first_delay=42.0), min_observations=20)
    few = TicketDurationModel.fit(exact(*range(1, 20)))
    assert plan.delay(few, 0, 0.0) == 42.0


def test_cold_start_later_polls_use_the_existing_back_off() -> None:
    schedule = PollSchedule(first_delay=30.0, multiplier=2.0, max_delay=900.0)
    plan = PollPlan(fallback=schedule)
    assert [plan.delay(None, n, 0.0) for n in range(4)] == [schedule.delay(n) for n in range(4)]


def test_first_poll_centre_catches_the_chosen_fraction() -> None:
    plan = PollPlan(first_quantile=0.85, first_spread=0.0)
    assert plan.first_poll_centre(spread_model()) == pytest.approx(spread_model().quantile(0.85))


def test_first_poll_is_spread_around_its_centre() -> None:
    plan = PollPlan(first_spread=0.2)
    model = spread_model()
    centre = plan.first_poll_centre(model)
    assert [plan.delay(model, 0, 0.0, draw=d) for d in (0.0, 0.5, 1.0)] == pytest.approx(
        [0.8 * centre, centre, 1.2 * centre]
    )


def poll_times(plan: PollPlan, model: TicketDurationModel, polls: int) -> list[float]:
    now, times = 0.0, []
    for n in range(polls):
        now += plan.delay(model, n, now)
        times.append(now)
    return times


def test_poll_times_increase() -> None:
    times = poll_times(PollPlan(), spread_model(), 12)
    assert all(b > a for a, b in itertools.pairwise(times))


def test_waits_are_capped_at_max_delay() -> None:
    plan = PollPlan(fallback=PollSchedule(max_delay=100.0))
    model = spread_model()
    now, waits = 0.0, []
    for n in range(12):
        waits.append(plan.delay(model, n, now))
        now += waits[-1]
    assert max(waits) == 100.0


def test_past_everything_seen_the_plan_backs_off_geometrically() -> None:
    plan = PollPlan(multiplier=2.0)
    assert plan.delay(spread_model(), 3, 200.0) == pytest.approx(200.0)
