"""`RetryPolicy` and `PollSchedule`: pure values, pinned."""

from __future__ import annotations

import random

import pytest

from scheduling.policy.retry import PollSchedule, RetryPolicy

# --- RetryPolicy --------------------------------------------------------------------------


def test_delays_are_pinned_for_a_seeded_rng() -> None:
    policy = RetryPolicy()  # base 2, x2, jitter 0.25
    rng = random.Random(7)
    delays = [policy.delay(attempt, rng=rng) for attempt in (1, 2, 3)]
    assert delays == pytest.approx([1.6619163824165812, 3.150849173924502, 7.301868946079708])


def test_a_delay_is_the_capped_backoff_times_a_spread_from_the_rng() -> None:
    policy = RetryPolicy(base_delay=2.0, multiplier=2.0, max_delay=600.0, jitter=0.25)
    draw = random.Random(42).random()  # what uniform(0.75, 1.0) is made of
    spread = 0.75 + 0.25 * draw
    assert policy.delay(1, rng=random.Random(42)) == pytest.approx(2.0 * spread)
    assert policy.delay(4, rng=random.Random(42)) == pytest.approx(16.0 * spread)
    assert policy.delay(30, rng=random.Random(42)) == pytest.approx(600.0 * spread)


def test_without_jitter_the_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=2.0, multiplier=2.0, max_delay=60.0, jitter=0.0)
    assert [policy.delay(attempt) for attempt in range(1, 8)] == [
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        60.0,
        60.0,
    ]
    assert policy.delay(0) == 2.0  # an attempt number below 1 is treated as the first
    assert policy.delay(500) == 60.0  # no overflow far beyond the cap


@pytest.mark.parametrize("attempt", [1, 3, 6, 12, 40])
def test_jitter_stays_within_its_range(attempt: int) -> None:
    policy = RetryPolicy(base_delay=2.0, multiplier=2.0, max_delay=600.0, jitter=0.25)
    ceiling = min(600.0, 2.0 * 2.0 ** (attempt - 1))
    rng = random.Random(attempt)
    delays = [policy.delay(attempt, rng=rng) for _ in range(300)]
    assert all(0.75 * ceiling <= delay <= ceiling for delay in delays)
    assert max(delays) - min(delays) > 0.2 * ceiling  # it does spread


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(base_delay=2.0, max_delay=600.0, jitter=0.0)
    assert policy.delay(1, retry_after=30.0) == 30.0  # longer than the backoff: honoured
    assert policy.delay(5, retry_after=3.0) == 32.0  # shorter than the backoff: backoff wins
    assert policy.delay(1, retry_after=0.0) == 2.0
    assert policy.delay(1, retry_after=None) == 2.0


def test_retry_after_is_capped_at_max_delay() -> None:
    policy = RetryPolicy(base_delay=2.0, max_delay=600.0, jitter=0.0)
    assert policy.delay(1, retry_after=86400.0) == 600.0


def test_retry_after_floor_applies_after_jitter() -> None:
    policy = RetryPolicy(base_delay=100.0, jitter=0.5)
    for seed in range(20):
        assert policy.delay(1, retry_after=90.0, rng=random.Random(seed)) >= 90.0


def test_gives_up_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.gives_up_after(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert RetryPolicy().gives_up_after(9) is False
    assert RetryPolicy().gives_up_after(10) is True


# --- PollSchedule -------------------------------------------------------------------------


def test_poll_schedule_starts_at_the_first_delay_and_backs_off_to_the_cap() -> None:
    schedule = PollSchedule(first_delay=30.0, multiplier=2.0, max_delay=900.0)
    assert [schedule.delay(n) for n in range(7)] == [
        30.0,
        60.0,
        120.0,
        240.0,
        480.0,
        900.0,
        900.0,
    ]
    assert schedule.delay(-3) == 30.0


def test_poll_schedule_defaults_match_the_documented_settings() -> None:
    schedule = PollSchedule()
    assert schedule.delay(0) == 30.0
    assert schedule.delay(100) == 900.0
