"""Polling policies in simulation: API calls per delivered document and how late `complete` is.

No network and no clock: each ticket gets a real duration D drawn from a distribution, a
policy decides when to poll, and a ticket is recorded complete at the first poll at or after
D (the API and the broker are taken as instant). Side by side:

- learned: `scheduling.poll_planner.PollPlan` on a model refitted every `--refit` tickets from
  the last 200 outcomes, as the worker does per tenant; measured after `--warmup` tickets
  (which start from the plain schedule, as a new tenant does);
- naive: today's `PollSchedule` (first poll after 30 s, then x2 up to 900 s);
- every 10 s: what a plain requests loop would do.

    .venv/bin/python -m bench.poll_policy [--tickets 2000] [--warmup 600] [--seed 7]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scheduling.policy.poll_plan import (  # noqa: E402
    DurationObservation,
    PollPlan,
    TicketDurationModel,
)
from scheduling.policy.retry import PollSchedule  # noqa: E402

Sampler = Callable[[random.Random], float]
DelayRule = Callable[[int, float], float]
"""(polls_done, seconds_since_upload) -> wait before the next poll."""


def lognormal(median: float, sigma: float) -> Sampler:
    return lambda rng: rng.lognormvariate(math.log(median), sigma)


def bimodal(rng: random.Random) -> float:
    """Most tickets fast (median 15 s), 30 % slow (median 90 s): e.g. two document types."""
    if rng.random() < 0.7:
        return rng.lognormvariate(math.log(15.0), 0.3)
    return rng.lognormvariate(math.log(90.0), 0.3)


DISTRIBUTIONS: dict[str, Sampler] = {
    "uniform(5,120)": lambda rng: rng.uniform(5.0, 120.0),
    "lognormal(30,0.3)": lognormal(30.0, 0.3),
    "lognormal(30,0.6)": lognormal(30.0, 0.6),
    "fixed(30)": lambda rng: 30.0,
    "bimodal(15|90)": bimodal,
}


@dataclass(frozen=True)
class TicketOutcome:
    """One simulated ticket: its real duration, when we saw it complete, calls spent."""

    duration: float
    last_in_progress: float
    recorded: float
    calls: int


def follow_ticket(duration: float, rule: DelayRule) -> TicketOutcome:
    """Upload (one call) then poll by `rule` until a poll finds the ticket complete."""
    now, polls, last_in_progress = 0.0, 0, 0.0
    while True:
        now += rule(polls, now)
        polls += 1
        if now >= duration:
            return TicketOutcome(duration, last_in_progress, now, 1 + polls)
        last_in_progress = now


@dataclass(frozen=True)
class Figures:
    """What the table prints for one policy on one distribution."""

    calls_per_doc: float
    ratio_median: float
    ratio_p90: float
    latency_median: float
    latency_p90: float

    @classmethod
    def of(cls, outcomes: list[TicketOutcome]) -> Figures:
        ratios = sorted(o.recorded / o.duration for o in outcomes)
        lateness = sorted(o.recorded for o in outcomes)
        return cls(
            calls_per_doc=sum(o.calls for o in outcomes) / len(outcomes),
            ratio_median=statistics.median(ratios),
            ratio_p90=_p90(ratios),
            latency_median=statistics.median(lateness),
            latency_p90=_p90(lateness),
        )


def _p90(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def simulate_learned(
    sample: Sampler,
    *,
    tickets: int,
    warmup: int,
    seed: int,
    plan: PollPlan | None = None,
    window: int = 200,
    refit_every: int = 25,
) -> list[TicketOutcome]:
    """Tickets one after another under the learned plan; returns those after the warm-up."""
    plan = plan or PollPlan()
    rng = random.Random(seed)
    history: deque[DurationObservation] = deque(maxlen=window)
    model: TicketDurationModel | None = None
    outcomes = []
    for n in range(warmup + tickets):
        if n % refit_every == 0:
            model = TicketDurationModel.fit(history)
        current = model

        def rule(
            polls_done: int, since: float, current: TicketDurationModel | None = current
        ) -> float:
            return plan.delay(current, polls_done, since, draw=rng.random())

        outcome = follow_ticket(sample(rng), rule)
        history.append(DurationObservation(outcome.last_in_progress, outcome.recorded))
        if n >= warmup:
            outcomes.append(outcome)
    return outcomes


def simulate_fixed_rule(
    sample: Sampler, rule: DelayRule, *, tickets: int, seed: int
) -> list[TicketOutcome]:
    rng = random.Random(seed)
    return [follow_ticket(sample(rng), rule) for _ in range(tickets)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    naive = PollSchedule(first_delay=30.0, multiplier=2.0, max_delay=900.0)
    policies: dict[str, Callable[[Sampler], list[TicketOutcome]]] = {
        "learned": lambda s: simulate_learned(
            s, tickets=args.tickets, warmup=args.warmup, seed=args.seed
        ),
        "naive 30s x2": lambda s: simulate_fixed_rule(
            s, lambda polls, _since: naive.delay(polls), tickets=args.tickets, seed=args.seed
        ),
        "every 10s": lambda s: simulate_fixed_rule(
            s, lambda _polls, _since: 10.0, tickets=args.tickets, seed=args.seed
        ),
    }
    print(
        f"{args.tickets} tickets per distribution (learned: after {args.warmup} warm-up), "
        "ratio = recorded complete / real duration, latency in seconds after upload"
    )
    header = (
        f"{'distribution':<18} {'policy':<13} {'calls/doc':>9} "
        f"{'ratio p50':>9} {'ratio p90':>9} {'lat p50':>8} {'lat p90':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, sample in DISTRIBUTIONS.items():
        for label, run in policies.items():
            f = Figures.of(run(sample))
            print(
                f"{name:<18} {label:<13} {f.calls_per_doc:>9.3f} {f.ratio_median:>9.2f} "
                f"{f.ratio_p90:>9.2f} {f.latency_median:>8.1f} {f.latency_p90:>8.1f}"
            )
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
