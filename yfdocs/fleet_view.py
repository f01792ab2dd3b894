"""What `yfdocs status` says about the fleet: jobs by state, the API budgets, the backlog.

The estimate of when the backlog is delivered takes the fleet's pace over the last hour
(or, before any call was made, the configured rate) and the daily quota, whichever binds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine

from config import Settings
from models import JobState
from models import jobs as job_table
from scheduling.governor import DEFAULT_SPACING_HALF_LIFE
from scheduling.token_cache import RefusalRecord, active_refusals
from scheduling.usage import DeliveryOutlook, FleetUsage, delivery_outlook, fleet_usage
from yfdocs.terminal_text import user_text

__all__ = ["FleetSummary", "fleet_summary", "render_fleet"]

# Calls a document still needs: an upload and about 1.2 status calls (the planner's
# target); a ticket already uploaded needs only the status calls.
CALLS_PER_NEW_DOCUMENT = 2.2
CALLS_PER_UPLOADED_TICKET = 1.2


@dataclass(frozen=True)
class FleetSummary:
    """The fleet at one moment; `as_dict()` is the `status --fleet --json` object."""

    at: datetime
    jobs_by_state: dict[str, int]
    usage: FleetUsage
    backlog_documents: int
    calls_needed: int
    pace_calls_per_hour: float
    estimated_delivery_at: datetime | None
    waiting_for_quota: bool
    outlook: DeliveryOutlook
    credentials_refused: tuple[RefusalRecord, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        usage = {
            key: value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
            for key, value in asdict(self.usage).items()
        }
        return {
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "jobs_by_state": self.jobs_by_state,
            **usage,
            "backlog_documents": self.backlog_documents,
            "calls_needed": self.calls_needed,
            "pace_calls_per_hour": round(self.pace_calls_per_hour, 1),
            "estimated_delivery_at": (
                self.estimated_delivery_at.isoformat().replace("+00:00", "Z")
                if self.estimated_delivery_at
                else None
            ),
            "waiting_for_quota": self.waiting_for_quota,
            "token_budget": {
                "budget": self.outlook.budget,
                "used": self.outlook.used,
                "left": self.outlook.left,
                "reserve": self.outlook.reserve,
                "window_start": _iso(self.outlook.window_start),
                "window_end": _iso(self.outlook.window_end),
            },
            "pace_tokens_per_day": self.outlook.pace_per_day,
            "windows": [
                {
                    "tenant_id": window.tenant_id,
                    "open_until": _iso(window.open_until),
                    "next_window_at": _iso(window.next_at),
                    "waiting": window.waiting,
                }
                for window in self.outlook.windows
            ],
            "backlog_by_class": self.outlook.backlog_by_class,
            "backlog_by_tenant": self.outlook.backlog_by_tenant,
            "oldest_waiting": {
                "job_id": self.outlook.oldest_job_id,
                "waiting_since": _iso(self.outlook.oldest_waiting_since),
                "window_at": _iso(self.outlook.oldest_window_at),
            },
            "credentials_refused": [
                {
                    "tenant_id": refusal.tenant_id,
                    "reason": refusal.reason,
                    "refusals": refusal.refusals,
                    "retry_at": refusal.refused_until.isoformat().replace("+00:00", "Z"),
                }
                for refusal in self.credentials_refused
            ],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _estimate(
    now: datetime,
    calls_needed: int,
    pace_per_hour: float,
    usage: FleetUsage,
    window: timedelta,
) -> datetime | None:
    """When `calls_needed` calls are made at this pace, spending each quota window in full."""
    if calls_needed <= 0:
        return now
    if pace_per_hour <= 0:
        return None
    if calls_needed <= usage.quota_left:
        return now + timedelta(hours=calls_needed / pace_per_hour)
    later_windows, rest = divmod(calls_needed - usage.quota_left, usage.daily_quota)
    if rest == 0:  # the last window is spent in full
        later_windows, rest = later_windows - 1, usage.daily_quota
    last_window_start = usage.quota_resets_at + window * later_windows
    return last_window_start + timedelta(hours=rest / pace_per_hour)


def fleet_summary(engine: Engine, settings: Settings, now: datetime) -> FleetSummary:
    """Read the job table and the call ledger once each."""
    usage = fleet_usage(
        engine,
        daily_quota=settings.daily_quota,
        token_monthly_budget=settings.token_monthly_budget,
        now=now,
        quota_timezone=settings.quota_timezone,
        quota_window_seconds=settings.quota_window,
        token_budget_window=settings.token_budget_window,
    )
    by_state = job_table.counts_by_state(engine)
    refused = tuple(active_refusals(engine, now))
    new_documents = by_state[JobState.QUEUED.value] + by_state[JobState.UPLOADING.value]
    uploaded = by_state[JobState.POLLING.value]
    calls_needed = math.ceil(
        new_documents * CALLS_PER_NEW_DOCUMENT + uploaded * CALLS_PER_UPLOADED_TICKET
    )
    interval = settings.min_interval + usage.learned_spacing_s
    configured_pace = 3600.0 / max(interval, 60.0 / settings.rate_per_minute)
    pace = float(usage.calls_last_hour) if usage.calls_last_hour else configured_pace
    return FleetSummary(
        at=now,
        jobs_by_state=by_state,
        usage=usage,
        backlog_documents=new_documents + uploaded,
        calls_needed=calls_needed,
        pace_calls_per_hour=pace,
        estimated_delivery_at=_estimate(
            now, calls_needed, pace, usage, timedelta(seconds=settings.quota_window)
        ),
        waiting_for_quota=usage.quota_left == 0 and calls_needed > 0,
        outlook=delivery_outlook(engine, settings, now),
        credentials_refused=refused,
    )


def render_fleet(summary: FleetSummary) -> Table:
    """The fleet panel shown above the jobs table."""
    usage = summary.usage
    table = Table(title="Fleet", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    states = ", ".join(f"{state} {count}" for state, count in summary.jobs_by_state.items())
    table.add_row("jobs", states)
    quota_line = (
        f"{usage.calls_today} of {usage.daily_quota} used today, {usage.quota_left} left; "
        f"resets {usage.quota_resets_at:%Y-%m-%d %H:%M}Z"
    )
    if summary.waiting_for_quota:
        quota_line += " [yellow](spent: work waits for the reset)[/]"
    table.add_row("API calls", quota_line)
    outlook = summary.outlook
    table.add_row(
        "tokens",
        f"{outlook.used} of {outlook.budget} used this budget window (ends "
        f"{outlook.window_end:%Y-%m-%d %H:%M}Z), {outlook.left} left, {outlook.reserve} held "
        f"in reserve; pace now {outlook.pace_per_day:g} a day",
    )
    for window in outlook.windows:
        if window.open_until is not None:
            when = f"open until {window.open_until:%H:%M:%S}Z"
        elif window.next_at is not None and window.next_at <= summary.at:
            when = "opens now"
        elif window.next_at is not None:
            when = f"next window about {window.next_at:%Y-%m-%d %H:%M}Z"
        else:
            when = "no window planned"
        table.add_row(
            "window",
            Text.assemble(
                "tenant ", user_text(window.tenant_id), f": {when}, {window.waiting} waiting"
            ),
        )
    if usage.backoff_until is not None:
        table.add_row(
            "backoff", f"the API said 429: fleet waits until {usage.backoff_until:%H:%M:%S}Z"
        )
    for refusal in summary.credentials_refused:
        table.add_row(
            "credentials",
            Text.assemble(
                ("refused by the token endpoint for tenant ", "red"),
                user_text(refusal.tenant_id, style="red"),
                (" (", "red"),
                user_text(refusal.reason, style="red"),
                (f", {refusal.refusals}x)", "red"),
                f": its jobs wait until {refusal.refused_until:%Y-%m-%d %H:%M}Z, "
                "or until a worker starts with new ones",
            ),
        )
    if usage.learned_spacing_s > 0:
        table.add_row(
            "spacing",
            f"+{usage.learned_spacing_s:.3f} s between calls, learned from spike-arrest 429s "
            f"(halves every {DEFAULT_SPACING_HALF_LIFE / 60:g} minutes)",
        )
    eta = (
        f"{summary.estimated_delivery_at:%Y-%m-%d %H:%M}Z"
        if summary.estimated_delivery_at
        else "unknown"
    )
    table.add_row(
        "backlog",
        f"{summary.backlog_documents} documents, about {summary.calls_needed} calls; "
        f"at {summary.pace_calls_per_hour:.0f} calls/hour delivered by {eta}",
    )
    classes = outlook.backlog_by_class
    table.add_row(
        "by class",
        f"polls {classes['poll']}, live {classes['live']}, "
        f"backfill and retries {classes['backfill_or_retry']}",
    )
    if outlook.oldest_waiting_since is not None:
        start = (
            f"its window about {outlook.oldest_window_at:%Y-%m-%d %H:%M}Z"
            if outlook.oldest_window_at is not None
            else "its tenant's window is open"
        )
        table.add_row(
            "oldest",
            f"job {outlook.oldest_job_id} waits since "
            f"{outlook.oldest_waiting_since:%Y-%m-%d %H:%M}Z; {start}",
        )
    return table
