"""Limits accounting with explicit API times: parallel slots, spike smoothing, daily quota."""

from __future__ import annotations

import pytest

from sandbox.config import LimitConfig
from sandbox.limits import LimitExceeded, RateLimiter

DAY = 86_400.0
T0 = 1000 * DAY + 3600.0


def test_fourth_parallel_call_is_refused_and_a_release_frees_a_slot() -> None:
    limiter = RateLimiter()
    limits = LimitConfig(max_parallel=3, spike_per_minute=None, daily_quota=None)
    admitted = [limiter.admit("app", T0, T0, limits) for _ in range(3)]
    with pytest.raises(LimitExceeded) as caught:
        limiter.admit("app", T0, T0, limits)
    assert caught.value.limit == "parallel"
    admitted[0].release()
    admitted[0].release()  # idempotent: must not free a second slot
    limiter.admit("app", T0, T0, limits)
    with pytest.raises(LimitExceeded):
        limiter.admit("app", T0, T0, limits)
    assert limiter.rejections["parallel"] == 2


def test_parallel_limit_is_per_app() -> None:
    limiter = RateLimiter()
    limits = LimitConfig(max_parallel=1, spike_per_minute=None, daily_quota=None)
    limiter.admit("a", T0, T0, limits)
    limiter.admit("b", T0, T0, limits)
    with pytest.raises(LimitExceeded):
        limiter.admit("a", T0, T0, limits)


def test_spike_arrest_needs_the_full_interval_since_the_last_accepted_call() -> None:
    limiter = RateLimiter()
    limits = LimitConfig(max_parallel=None, spike_per_minute=100.0, daily_quota=None)
    limiter.admit("app", T0, T0, limits).release()
    with pytest.raises(LimitExceeded) as caught:
        limiter.admit("app", T0 + 0.59, T0 + 0.59, limits)
    assert caught.value.limit == "spike"
    assert caught.value.retry_after_api_s == pytest.approx(0.01)
    # The refused call did not move the window: 0.6 s after the accepted one is fine.
    limiter.admit("app", T0 + 0.6, T0 + 0.6, limits).release()
    with pytest.raises(LimitExceeded):
        limiter.admit("app", T0 + 1.0, T0 + 1.0, limits)


def test_daily_quota_counts_accepted_calls_and_resets_at_the_next_api_day() -> None:
    limiter = RateLimiter()
    limits = LimitConfig(max_parallel=None, spike_per_minute=None, daily_quota=2)
    limiter.admit("app", T0, T0, limits).release()
    limiter.admit("app", T0, T0, limits).release()
    with pytest.raises(LimitExceeded) as caught:
        limiter.admit("app", T0 + 10, T0 + 10, limits)
    assert caught.value.limit == "daily"
    assert caught.value.retry_after_api_s == pytest.approx(DAY - 3610.0)
    assert limiter.daily_calls("app") == 2
    tomorrow = T0 + DAY
    limiter.admit("app", tomorrow, tomorrow, limits).release()
    assert limiter.daily_calls("app") == 1


def test_disabled_limits_admit_everything() -> None:
    limiter = RateLimiter()
    limits = LimitConfig(max_parallel=None, spike_per_minute=None, daily_quota=None)
    for _ in range(50):
        limiter.admit("app", T0, T0, limits)
    assert limiter.rejections == {"parallel": 0, "spike": 0, "daily": 0}
