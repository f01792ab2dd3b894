"""The windows the API's budgets are counted in, and the learned spacing's decay: pure time.

The daily quota counts calendar days in a time zone; the token budget counts calendar
months. A shorter window (a time-scaled sandbox, a test) is a fixed slice of UTC time,
counted from the epoch, so that a month or a day can pass in minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["DAY_SECONDS", "budget_window", "decayed_spacing", "month_window", "quota_day_window"]

DAY_SECONDS = 86400.0
_NEGLIGIBLE_SPACING = 0.0005


def quota_day_window(
    now: datetime, timezone: str = "UTC", window_seconds: float = DAY_SECONDS
) -> tuple[datetime, datetime]:
    """The quota window that holds `now`, as [start, end) in aware UTC.

    A day is the calendar day in `timezone`. A shorter window (a time-scaled sandbox, a
    test) is a fixed slice of UTC time, counted from the epoch.
    """
    if window_seconds != DAY_SECONDS:
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        index = (now - epoch).total_seconds() // window_seconds
        start = epoch + timedelta(seconds=index * window_seconds)
        return start, start + timedelta(seconds=window_seconds)
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    start = datetime(local.year, local.month, local.day, tzinfo=zone)
    following = local.date() + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def month_window(now: datetime, timezone: str = "UTC") -> tuple[datetime, datetime]:
    """The calendar month in `timezone` that holds `now`, as [start, end) in aware UTC."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    start = datetime(local.year, local.month, 1, tzinfo=zone)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    end = datetime(year, month, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def decayed_spacing(
    extra: float, raised_at: datetime | None, now: datetime, half_life: float
) -> float:
    """The learned extra interval at `now`: `extra` as of `raised_at`, halved per half-life."""
    if extra <= 0 or raised_at is None:
        return 0.0
    age = max(0.0, (now - raised_at).total_seconds())
    value = extra * 0.5 ** (age / half_life) if half_life > 0 else 0.0
    return value if value >= _NEGLIGIBLE_SPACING else 0.0


def budget_window(
    now: datetime, timezone: str = "UTC", window_seconds: float | None = None
) -> tuple[datetime, datetime]:
    """The token budget window that holds `now`, as [start, end) in aware UTC.

    The calendar month in `timezone` by default; a shorter one (`window_seconds`, for
    time-scaled sandboxes and tests) is a fixed slice of UTC time counted from the epoch,
    as the quota window is.
    """
    if window_seconds is None:
        return month_window(now, timezone)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    index = (now - epoch).total_seconds() // window_seconds
    start = epoch + timedelta(seconds=index * window_seconds)
    return start, start + timedelta(seconds=window_seconds)
