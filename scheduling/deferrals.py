"""Why a call may not be made now: the deferrals, each with the moment to look again.

A deferral is never the job's fault: the job waits until `.until` (aware UTC) and no
attempt is spent (decision DEFER in `models.errors`).

    CallDeferred                 .until, .reason
    ├── QuotaExhausted           daily API quota spent; until the next quota day
    ├── TokenBudgetExhausted     monthly token requests spent; until the next month
    ├── SlotWaitTimeout          no slot within the wait (busy, 429 backoff, per-minute cap,
    │                            or the step's time for calls is spent)
    ├── TokenWaitTimeout         (scheduling.token_cache) another process fetches the token
    └── WorkerStopping           (scheduling.call_context) this process is stopping
"""

from __future__ import annotations

from datetime import UTC, datetime

from models.errors import Decision, YfdocsError

__all__ = ["CallDeferred", "QuotaExhausted", "SlotWaitTimeout", "TokenBudgetExhausted"]


class CallDeferred(YfdocsError):
    """The call may not be made now; retry the job at `until` (aware UTC) instead of failing."""

    decision = Decision.DEFER

    def __init__(self, until: datetime, reason: str) -> None:
        if until.tzinfo is None:
            raise ValueError(f"CallDeferred needs an aware datetime, got naive {until!r}")
        super().__init__(until, reason)
        self.until = until.astimezone(UTC)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.reason}; retry at {self.until.isoformat()}"


class QuotaExhausted(CallDeferred):
    """The fleet has made its daily quota of API calls; the next quota day starts at `until`."""

    def __init__(self, resets_at: datetime, reason: str = "daily API call quota spent") -> None:
        super().__init__(resets_at, reason)

    @property
    def resets_at(self) -> datetime:
        return self.until


class TokenBudgetExhausted(CallDeferred):
    """The app has requested its monthly budget of tokens; the next month starts at `until`."""

    def __init__(
        self, resets_at: datetime, reason: str = "monthly token request budget spent"
    ) -> None:
        super().__init__(resets_at, reason)

    @property
    def resets_at(self) -> datetime:
        return self.until


class SlotWaitTimeout(CallDeferred):
    """No call slot within `max_wait` (all busy, a fleet backoff, or the per-minute cap)."""

    def __init__(
        self, retry_at: datetime, reason: str = "no API call slot within max_wait"
    ) -> None:
        super().__init__(retry_at, reason)

    @property
    def retry_at(self) -> datetime:
        return self.until
