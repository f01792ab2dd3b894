"""The token pacer: when a new token may be requested, and for which tenant.

The API allows a budget of token requests per budget window (400 a month for the whole
app), and a token serves one tenant for at most an hour. A token therefore opens a
*delivery window* for one tenant, and the pacer spreads the windows across the budget
window, so that the budget lasts it:

- **the pace line.** By elapsed fraction f of the budget window, at most (B - R) x f tokens
  may have been requested, B the budget and R the reserve, plus a small `burst` that lets
  the pacer run a little ahead. While demand stays under the line (the budget is
  plentiful), every request is allowed at once, as if there were no pacer; when demand is
  above it, tokens follow the line. Requests so never exceed B - R + burst, and the burst is
  smaller than the reserve: pacing never spends the whole budget.
- **the reserve** (`YFDOCS_TOKEN_RESERVE`, a fraction of B) is kept for refused credentials
  and revoked tokens; it is spent only on live work, and only in the budget window's last
  day (its last thirtieth, for a short window), down to one token.
- **the pace** reported to operators is (B - used - R) / time left, in tokens a day: what the
  line allows from now on.
- **who gets a window** (`most_urgent`): live work before backfill, then whoever has waited
  longest.

Pure: the caller passes the counts and the clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["TenantDemand", "TokenPace", "most_urgent"]

DAY = timedelta(days=1)


@dataclass(frozen=True)
class TokenPace:
    """The budget window at one moment, and what it allows."""

    budget: int
    used: int  # token requests counted in this budget window (granted and not yet made, too)
    reserve_fraction: float
    window_start: datetime
    window_end: datetime
    now: datetime

    @property
    def reserve(self) -> int:
        return min(self.budget - 1, math.ceil(self.budget * self.reserve_fraction))

    @property
    def burst(self) -> int:
        """How far ahead of the line the pacer may run: about a day's share of the budget,
        at least one token, and always less than the reserve."""
        share = self.paced_budget / max(1.0, self.window_length / DAY)
        return max(1, min(math.ceil(share), max(1, self.reserve - 1)))

    @property
    def paced_budget(self) -> int:
        return self.budget - self.reserve

    @property
    def window_length(self) -> timedelta:
        return self.window_end - self.window_start

    @property
    def elapsed_fraction(self) -> float:
        length = self.window_length.total_seconds()
        elapsed = (self.now - self.window_start).total_seconds()
        return min(1.0, max(0.0, elapsed / length)) if length > 0 else 1.0

    @property
    def line(self) -> float:
        """Token requests the even pace allows by now."""
        return self.paced_budget * self.elapsed_fraction

    @property
    def in_last_stretch(self) -> bool:
        """The budget window's last day (or last thirtieth of a shorter window)."""
        stretch = min(DAY, self.window_length / 30)
        return self.window_end - self.now <= stretch

    def allows(self, *, live: bool) -> bool:
        """Whether one more token may be requested now, for live work or for other work."""
        if self.used >= self.budget - 1:
            return False  # the last token is never paced away
        if self.used < self.line + self.burst:
            return True
        return live and self.in_last_stretch

    def per_day(self) -> float:
        """The pace from now on: (budget - used - reserve) / time left, tokens per day."""
        left = (self.window_end - self.now) / DAY
        if left <= 0:
            return 0.0
        return max(0.0, self.budget - self.used - self.reserve) / left

    def next_allowed_at(self, *, ahead: int = 0) -> datetime:
        """When the line passes `used + ahead` minus the burst (so that `allows` turns
        true): the start of the `ahead`-th window after the next one, if demand stays
        above the line."""
        needed = self.used + ahead - self.burst
        if needed < self.line:
            return self.now
        if self.paced_budget <= 0:
            return self.window_end
        fraction = needed / self.paced_budget
        if fraction >= 1.0:
            return self.window_end
        return self.window_start + self.window_length * fraction


@dataclass(frozen=True)
class TenantDemand:
    """A tenant's waiting work, as the pacer weighs it."""

    tenant_id: str
    live: bool  # a live upload, or a poll of a live job, is waiting
    waiting_since: datetime  # when its oldest waiting work became due


def most_urgent(demands: Iterable[TenantDemand]) -> list[TenantDemand]:
    """The tenants in the order they should get windows: live first, then oldest waiting."""
    return sorted(demands, key=lambda d: (not d.live, d.waiting_since, d.tenant_id))
