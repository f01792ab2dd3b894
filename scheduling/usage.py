"""How much of the API's budgets the fleet has used, for `yfdocs status` (read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from config import Settings
from models import JobState, Priority, utcnow
from models.jobs import WaitingWork, waiting_work
from scheduling.governor import DEFAULT_SPACING_HALF_LIFE, pacing_state
from scheduling.ledger import calls_since, count_calls
from scheduling.policy.pacing import TenantDemand, most_urgent
from scheduling.policy.windows import (
    DAY_SECONDS,
    budget_window,
    decayed_spacing,
    quota_day_window,
)
from scheduling.token_windows import open_windows, outstanding_grants, token_pace

__all__ = ["DeliveryOutlook", "FleetUsage", "TenantWindow", "delivery_outlook", "fleet_usage"]


@dataclass(frozen=True)
class FleetUsage:
    """How much of the API's budgets the fleet has used, and when they come back."""

    calls_today: int
    daily_quota: int
    quota_left: int
    quota_resets_at: datetime
    token_requests_this_month: int
    token_monthly_budget: int
    backoff_until: datetime | None
    calls_last_hour: int
    learned_spacing_s: float = 0.0


def fleet_usage(
    engine: Engine,
    *,
    daily_quota: int,
    token_monthly_budget: int,
    now: datetime | None = None,
    quota_timezone: str = "UTC",
    quota_window_seconds: float = DAY_SECONDS,
    spacing_half_life: float = DEFAULT_SPACING_HALF_LIFE,
    token_budget_window: float | None = None,
) -> FleetUsage:
    """Read the ledger and the governor's state (read-only; a backoff already over is None,
    `learned_spacing_s` is what spike 429s added to the interval, as of `now`)."""
    moment = now if now is not None else utcnow()
    day_start, day_end = quota_day_window(moment, quota_timezone, quota_window_seconds)
    month_start, month_end = budget_window(moment, quota_timezone, token_budget_window)
    with engine.begin() as connection:
        calls_today = count_calls(connection, day_start, day_end, tokens=False)
        tokens = count_calls(connection, month_start, month_end, tokens=True)
        last_hour = calls_since(connection, moment - timedelta(hours=1), moment)
        state = pacing_state(connection)
    backoff = state.backoff_until if state is not None else None
    learned = (
        decayed_spacing(state.spacing_extra, state.spacing_raised_at, moment, spacing_half_life)
        if state is not None
        else 0.0
    )
    return FleetUsage(
        calls_today=calls_today,
        daily_quota=daily_quota,
        quota_left=max(0, daily_quota - calls_today),
        quota_resets_at=day_end,
        token_requests_this_month=tokens,
        token_monthly_budget=token_monthly_budget,
        backoff_until=backoff if backoff is not None and backoff > moment else None,
        calls_last_hour=last_hour,
        learned_spacing_s=round(learned, 4),
    )


@dataclass(frozen=True)
class TenantWindow:
    """A tenant's delivery window: open until `open_until`, or next expected at `next_at`."""

    tenant_id: str
    open_until: datetime | None
    next_at: datetime | None
    waiting: int


@dataclass(frozen=True)
class DeliveryOutlook:
    """The token budget, the pace, each tenant's window and the backlog by class and tenant."""

    budget: int
    used: int
    reserve: int
    window_start: datetime
    window_end: datetime
    pace_per_day: float
    windows: tuple[TenantWindow, ...]
    backlog_by_class: dict[str, int]
    backlog_by_tenant: dict[str, int]
    oldest_job_id: str | None
    oldest_waiting_since: datetime | None
    oldest_window_at: datetime | None

    @property
    def left(self) -> int:
        return max(0, self.budget - self.used)


def _class_name(work: WaitingWork) -> str:
    if work.state is JobState.POLLING:
        return "poll"
    if work.priority <= Priority.LIVE and not work.retry:
        return "live"
    return "backfill_or_retry"


def delivery_outlook(engine: Engine, settings: Settings, now: datetime) -> DeliveryOutlook:
    """What the dispatcher and the pacer face now (read-only)."""
    with engine.connect() as connection:
        pace = token_pace(connection, settings, now)
        granted = outstanding_grants(connection, now)
    opened = open_windows(engine, now=now, margin_seconds=settings.token_refresh_margin)
    work = waiting_work(engine)
    by_class = {"poll": 0, "live": 0, "backfill_or_retry": 0}
    by_tenant: dict[str, int] = {}
    oldest: dict[str, WaitingWork] = {}
    for group in work:
        by_class[_class_name(group)] += group.count
        by_tenant[group.tenant_id] = by_tenant.get(group.tenant_id, 0) + group.count
        current = oldest.get(group.tenant_id)
        if current is None or group.oldest_since < current.oldest_since:
            oldest[group.tenant_id] = group
    waiting_for_window = most_urgent(
        TenantDemand(
            tenant_id=tenant,
            live=any(g.tenant_id == tenant and g.priority <= Priority.LIVE for g in work),
            waiting_since=group.oldest_since,
        )
        for tenant, group in oldest.items()
        if tenant not in opened and tenant not in granted
    )
    windows = [
        TenantWindow(tenant, until, None, by_tenant.get(tenant, 0))
        for tenant, until in sorted(opened.items())
    ]
    windows += [
        TenantWindow(tenant, None, now, by_tenant.get(tenant, 0)) for tenant in sorted(granted)
    ]
    planned = {
        demand.tenant_id: pace.next_allowed_at(ahead=rank)
        for rank, demand in enumerate(waiting_for_window)
    }
    windows += [
        TenantWindow(tenant, None, at, by_tenant.get(tenant, 0)) for tenant, at in planned.items()
    ]
    oldest_overall = min(oldest.values(), key=lambda g: g.oldest_since, default=None)
    window_at: datetime | None = None
    if oldest_overall is not None:
        tenant = oldest_overall.tenant_id
        window_at = now if tenant in opened or tenant in granted else planned.get(tenant)
    return DeliveryOutlook(
        budget=pace.budget,
        used=pace.used,
        reserve=pace.reserve,
        window_start=pace.window_start,
        window_end=pace.window_end,
        pace_per_day=round(pace.per_day(), 2),
        windows=tuple(windows),
        backlog_by_class=by_class,
        backlog_by_tenant=by_tenant,
        oldest_job_id=oldest_overall.oldest_job_id if oldest_overall else None,
        oldest_waiting_since=oldest_overall.oldest_since if oldest_overall else None,
        oldest_window_at=window_at,
    )
