"""The learned plan in closed loop (bench's simulation, no clock): a property of the model.

Uniform(5, 120) s cannot meet both goals: any schedule at <= 2.2 calls per document has a
median ratio of at least 1.55 (see `scheduling.poll_planner`). The chosen trade-off keeps calls
within 2.2 and lets the median ratio go up to 1.8, which is what is tested there.
"""

from __future__ import annotations

import statistics

import pytest

from bench.poll_policy import DISTRIBUTIONS, TicketOutcome, simulate_learned

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def uniform_outcomes() -> list[TicketOutcome]:
    return simulate_learned(DISTRIBUTIONS["uniform(5,120)"], tickets=1500, warmup=500, seed=11)


@pytest.fixture(scope="module")
def lognormal_outcomes() -> list[TicketOutcome]:
    return simulate_learned(DISTRIBUTIONS["lognormal(30,0.3)"], tickets=1500, warmup=500, seed=11)


def calls_per_doc(outcomes: list[TicketOutcome]) -> float:
    return sum(o.calls for o in outcomes) / len(outcomes)


def median_ratio(outcomes: list[TicketOutcome]) -> float:
    return statistics.median(o.recorded / o.duration for o in outcomes)


def test_uniform_keeps_calls_within_budget(uniform_outcomes: list[TicketOutcome]) -> None:
    assert calls_per_doc(uniform_outcomes) <= 2.2


def test_uniform_median_ratio_within_the_chosen_trade_off(
    uniform_outcomes: list[TicketOutcome],
) -> None:
    assert median_ratio(uniform_outcomes) <= 1.8


def test_lognormal_keeps_calls_within_budget(lognormal_outcomes: list[TicketOutcome]) -> None:
    assert calls_per_doc(lognormal_outcomes) <= 2.2


def test_lognormal_median_ratio_within_goal(lognormal_outcomes: list[TicketOutcome]) -> None:
    assert median_ratio(lognormal_outcomes) <= 1.5
