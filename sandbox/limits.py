"""Per-app usage limits (all tenants together), as the vendor guide lists them.

Checked in one critical section, in the order a gateway applies them: concurrent calls,
then spike arrest (one call per 60/N s, measured from the last accepted call's arrival),
then the daily quota (counted per API day, UTC). A rejected call changes no state except
the rejection counters, so a client that backs off correctly recovers at once.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from sandbox.config import LimitConfig

__all__ = ["Admission", "LimitExceeded", "RateLimiter"]

_DAY = 86_400.0


@dataclass
class LimitExceeded(Exception):
    """A call over one of the limits; carries the gateway's fault code and the wait."""

    limit: str
    message: str
    error_code: str
    retry_after_api_s: float


@dataclass
class _AppUsage:
    in_flight: int = 0
    last_accepted: float | None = None
    day: int = -1
    day_calls: int = 0


@dataclass
class Admission:
    """A call that got through; `release` frees its parallel slot (idempotent)."""

    limiter: RateLimiter
    app: str
    released: bool = field(default=False)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.limiter._release(self.app)


class RateLimiter:
    """Enforces the limits of every app; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage: dict[str, _AppUsage] = {}
        self.rejections: dict[str, int] = {"parallel": 0, "spike": 0, "daily": 0}

    def admit(self, app: str, arrived_at: float, now: float, limits: LimitConfig) -> Admission:
        """Admit one call that arrived at API time `arrived_at`, or raise LimitExceeded."""
        with self._lock:
            usage = self._usage.setdefault(app, _AppUsage())
            if limits.max_parallel is not None and usage.in_flight >= limits.max_parallel:
                self.rejections["parallel"] += 1
                raise LimitExceeded(
                    "parallel",
                    f"Concurrent rate limit connection exceeded: at most "
                    f"{limits.max_parallel} calls in parallel. You have to wait for the "
                    "next time window.",
                    "policies.concurrentratelimit.ConcurrentRatelimtViolation",
                    1.0,
                )
            if limits.spike_per_minute is not None and usage.last_accepted is not None:
                interval = 60.0 / limits.spike_per_minute
                waited = arrived_at - usage.last_accepted
                if waited < interval - 1e-6:  # tolerate float rounding of epoch seconds only
                    self.rejections["spike"] += 1
                    raise LimitExceeded(
                        "spike",
                        f"Spike arrest violation. Allowed rate : {limits.spike_per_minute:g}pm. "
                        "You have to wait for the next time window.",
                        "policies.ratelimit.SpikeArrestViolation",
                        interval - max(waited, 0.0),
                    )
            day = math.floor(now / _DAY)
            if usage.day != day:
                usage.day, usage.day_calls = day, 0
            if limits.daily_quota is not None and usage.day_calls >= limits.daily_quota:
                self.rejections["daily"] += 1
                raise LimitExceeded(
                    "daily",
                    f"Rate limit quota violation. Quota limit of {limits.daily_quota} calls "
                    "per day exceeded. You have to wait for the next time window.",
                    "policies.ratelimit.QuotaViolation",
                    (day + 1) * _DAY - now,
                )
            usage.in_flight += 1
            usage.last_accepted = arrived_at
            usage.day_calls += 1
            return Admission(self, app)

    def _release(self, app: str) -> None:
        with self._lock:
            usage = self._usage.get(app)
            if usage is not None and usage.in_flight > 0:
                usage.in_flight -= 1

    def daily_calls(self, app: str) -> int:
        with self._lock:
            usage = self._usage.get(app)
            return usage.day_calls if usage else 0

    def reset(self) -> None:
        """Forget usage and counters (calls in flight keep their slots until released)."""
        with self._lock:
            for usage in self._usage.values():
                usage.last_accepted = None
                usage.day = -1
                usage.day_calls = 0
            self.rejections = dict.fromkeys(self.rejections, 0)
