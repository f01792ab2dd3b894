"""Every time budget of a job step, derived from the lease and the HTTP timeouts in one place.

A step may make several API calls (a token, the upload, a fresh token and the upload again
after a 401), each of which waits for a call slot first. The budgets nest by construction:

    claim ──────────────────────────────────────────────────────────────────> lease ends
      │ calls may start until `last_call_start`; each ends within `call`     │
      │                          soft time limit (the step records a release) │
      │                                              hard time limit (killed) │

- `call`: the longest one HTTP call is allowed (connect + read timeout);
- `last_call_start`: no call starts later than this after the claim, so the last one ends
  before the soft limit; the governor's wait for a slot and a wait for another process's
  token fetch both end there at the latest (then the job is deferred, no attempt spent);
- `soft_time_limit`: Celery raises in a step that is still running (a hung database, a
  bug); the step runner then gives the lease back with the reason, at once;
- `hard_time_limit`: Celery kills the process; still before the lease ends, so the sweeper
  never takes back a job whose task is alive;
- `token_fetch_lease`: how long one process may hold the fleet's token fetch: its longest
  slot wait plus one call, so no second process fetches (and spends the month's budget of
  token requests) while the first is still on its way.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIN_CALL_WINDOW_SECONDS", "TimeBudgets", "time_budgets"]

# Shares of the lease: the hard limit keeps the rest for the sweeper's clock skew, the soft
# limit keeps the time between the two for recording a release.
HARD_LIMIT_SHARE = 0.9
SOFT_LIMIT_SHARE = 0.8
RECORD_SECONDS = 1.0  # after the last call ends, before the soft limit: recording the outcome
MAX_SLOT_WAIT_SECONDS = 30.0  # the longest wait for one call slot, when the lease allows it
# A step must be able to start its calls for at least this long after its claim.
MIN_CALL_WINDOW_SECONDS = 2.0


@dataclass(frozen=True)
class TimeBudgets:
    """The step's budgets in seconds (see the module docstring for how they nest)."""

    lease: float
    call: float
    last_call_start: float
    slot_wait: float
    token_fetch_lease: float
    soft_time_limit: float
    hard_time_limit: float


def time_budgets(
    *, lease_seconds: float, connect_timeout: float, read_timeout: float
) -> TimeBudgets:
    """The budgets for these settings; raises `ValueError` (one line naming the settings)
    when the lease leaves no time to make a call."""
    call = connect_timeout + read_timeout
    soft = lease_seconds * SOFT_LIMIT_SHARE
    last_call_start = soft - call - RECORD_SECONDS
    if last_call_start < MIN_CALL_WINDOW_SECONDS:
        needed = (call + RECORD_SECONDS + MIN_CALL_WINDOW_SECONDS) / SOFT_LIMIT_SHARE
        raise ValueError(
            f"YFDOCS_LEASE_SECONDS={lease_seconds:g} is too short for YFDOCS_CONNECT_TIMEOUT="
            f"{connect_timeout:g} plus YFDOCS_READ_TIMEOUT={read_timeout:g}: a step could not "
            f"finish one call before its time limit; use a lease of at least {needed:.0f} s "
            "or shorter timeouts"
        )
    slot_wait = min(MAX_SLOT_WAIT_SECONDS, last_call_start)
    return TimeBudgets(
        lease=lease_seconds,
        call=call,
        last_call_start=last_call_start,
        slot_wait=slot_wait,
        token_fetch_lease=slot_wait + call + RECORD_SECONDS,
        soft_time_limit=soft,
        hard_time_limit=lease_seconds * HARD_LIMIT_SHARE,
    )
