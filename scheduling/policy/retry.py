"""Retry and polling schedules as data: pure functions that tests can pin.

Capped exponential backoff with jitter (as stripe-python's `_sleep_time_seconds` and
procrastinate's `RetryStrategy`), honouring a server's `Retry-After` when one comes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["PollSchedule", "RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before attempt `attempt + 1` after a transient failure."""

    base_delay: float = 2.0
    multiplier: float = 2.0
    max_delay: float = 600.0
    jitter: float = 0.25  # the delay is spread over [d * (1 - jitter), d]
    max_attempts: int = 10

    def delay(
        self, attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
        exponential = self.base_delay * self.multiplier ** max(0, attempt - 1)
        capped = min(self.max_delay, exponential)
        spread = (rng or random).uniform(1.0 - self.jitter, 1.0)
        wait = capped * spread
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait

    def gives_up_after(self, attempt: int) -> bool:
        return attempt >= self.max_attempts


@dataclass(frozen=True)
class PollSchedule:
    """When to ask about a ticket again: first after `first_delay`, then backing off."""

    first_delay: float = 30.0
    multiplier: float = 2.0
    max_delay: float = 900.0

    def delay(self, polls_done: int) -> float:
        """Seconds to wait before poll number `polls_done + 1`."""
        if polls_done <= 0:
            return self.first_delay
        return min(self.max_delay, self.first_delay * self.multiplier**polls_done)
