"""How much of the API's budgets the fleet has used, for `yfdocs status` (read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from models import utcnow
from scheduling.governor import DEFAULT_SPACING_HALF_LIFE, pacing_state
from scheduling.ledger import calls_since, count_calls
from scheduling.policy.windows import DAY_SECONDS, decayed_spacing, month_window, quota_day_window

__all__ = ["FleetUsage", "fleet_usage"]


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
) -> FleetUsage:
    """Read the ledger and the governor's state (read-only; a backoff already over is None,
    `learned_spacing_s` is what spike 429s added to the interval, as of `now`)."""
    moment = now if now is not None else utcnow()
    day_start, day_end = quota_day_window(moment, quota_timezone, quota_window_seconds)
    month_start, month_end = month_window(moment, quota_timezone)
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
