"""The poll planner: each tenant's delivered tickets, fitted into the pure `PollPlan`.

The policy and its reasoning live in `scheduling.policy.poll_plan`; this module reads the
outcomes from the job table (through `models.jobs`) and caches the fitted model per tenant.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from models import jobs as job_table
from models import utcnow
from scheduling.policy.poll_plan import DurationObservation, PollPlan, TicketDurationModel
from scheduling.policy.retry import PollSchedule

__all__ = ["PollPlanner", "load_observations"]


def load_observations(
    engine: Engine, tenant_id: str | None, *, window: int
) -> list[DurationObservation]:
    """The last `window` delivered tickets of a tenant as censored durations, in one query.

    `lower` is when the ticket was last seen in progress (`last_in_progress_at`, 0 when the
    first poll found it complete), `upper` when it was seen complete (`finished_at`), both
    relative to `uploaded_at`. Rows whose times make no interval (clock skew) are left out.
    `tenant_id` None reads the whole fleet's.
    """
    observations = []
    for ticket in job_table.recent_completed_tickets(engine, tenant_id, limit=window):
        upper = (ticket.finished_at - ticket.uploaded_at).total_seconds()
        still_at = ticket.last_in_progress_at
        lower = (still_at - ticket.uploaded_at).total_seconds() if still_at else 0.0
        if 0.0 <= lower < upper:
            observations.append(DurationObservation(lower, upper))
    return observations


# How often a tenant that is still learning reloads its model: its first outcomes count soon.
COLD_START_REFRESH_SECONDS = 5.0


@dataclass(frozen=True)
class _Fitted:
    model: TicketDurationModel
    refresh: float


class PollPlanner:
    """The wait before a ticket's next status call, learned per tenant from stored outcomes.

    One query per tenant every `refresh_seconds` per process (the fitted model is cached), so
    a poll normally costs no database work here. Safe to share between threads.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        first_delay: float,
        max_delay: float,
        window: int = 200,
        min_observations: int = 20,
        refresh_seconds: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
        plan: PollPlan | None = None,
        rng: random.Random | None = None,
    ) -> None:
        base = plan or PollPlan()
        self.plan = PollPlan(
            fallback=PollSchedule(
                first_delay=first_delay,
                multiplier=base.fallback.multiplier,
                max_delay=max_delay,
            ),
            first_quantile=base.first_quantile,
            next_quantile=base.next_quantile,
            first_spread=base.first_spread,
            multiplier=base.multiplier,
            min_observations=min_observations,
            min_delay=base.min_delay,
            spread_points=base.spread_points,
        )
        self.engine = engine
        self.window = window
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._models: dict[str, tuple[datetime, _Fitted]] = {}

    def model_for(self, tenant_id: str) -> TicketDurationModel:
        """The tenant's duration model, reloaded when older than `refresh_seconds`.

        A tenant with fewer than `min_observations` delivered tickets of its own starts
        from a prior: the fleet's recent tickets pooled across tenants (its own among them),
        reloaded often so that each new outcome counts soon. With nothing known anywhere
        the plan's configured first delay applies.
        """
        now = self.clock()
        with self._lock:
            cached = self._models.get(tenant_id)
        if cached is not None and (now - cached[0]).total_seconds() < cached[1].refresh:
            return cached[1].model
        own = load_observations(self.engine, tenant_id, window=self.window)
        observations = own
        refresh = self.refresh_seconds
        if len(own) < self.plan.min_observations:
            observations = load_observations(self.engine, None, window=self.window)
            refresh = min(self.refresh_seconds, COLD_START_REFRESH_SECONDS)
        model = TicketDurationModel.fit(observations)
        with self._lock:
            self._models[tenant_id] = (now, _Fitted(model, refresh))
        return model

    def delay_before_poll(
        self, tenant_id: str, polls_done: int, seconds_since_upload: float
    ) -> float:
        """Seconds to wait from now before the next status call of this tenant's ticket."""
        return self.delay_with(self.model_for(tenant_id), polls_done, seconds_since_upload)

    def delay_with(
        self, model: TicketDurationModel, polls_done: int, seconds_since_upload: float
    ) -> float:
        """As `delay_before_poll`, with a model already in hand (no database access).

        For callers inside a transaction: on SQLite a second connection would wait for it.
        """
        with self._lock:
            draw = self._rng.random()
        return self.plan.delay(model, polls_done, seconds_since_upload, draw=draw)
