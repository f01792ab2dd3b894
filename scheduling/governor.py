"""The fleet-wide rate governor: the API's limits, held in the shared database.

The Youforce API counts per app, not per process: 3 calls in flight, one call per 0.6 s
(100 a minute), 6,000 calls a day and 400 token requests a month. Every worker process
on every machine therefore paces itself through the same three tables:

- `governor_state` (one row, id 1) is the fleet's lock and clock: whoever starts a call
  locks it (SQLite: the engine's BEGIN IMMEDIATE; PostgreSQL: SELECT ... FOR UPDATE),
  checks the limits, moves `next_call_at` one interval on, and commits. A 429 sets
  `backoff_until`, which holds back every process, not only the one that was refused, for
  as long as the limit it names needs (see `back_off`); a spike-arrest 429 instead widens
  the interval (`spacing_extra`), which then halves with time.
- `governor_slots` are the parallel-call permits, one row per permit, held under a lease
  so that a process killed mid-call loses its permit when the lease runs out.
- `api_calls` is the ledger. A call is written when its slot is granted, in the same
  transaction (so the daily quota can never be overrun by processes racing each other,
  and a call whose process died still counts: the API counted it), and completed with its
  status and duration when the slot is left.

`slot()` waits in short sleeps, one short transaction per look, and never longer than
`max_wait`. When it cannot grant a call it raises a `CallDeferred`: the worker then
defers the job to `.until` instead of failing it.

    CallDeferred(Exception)          .until (aware UTC), .reason
    ├── QuotaExhausted               daily API quota spent; until the next quota day
    ├── TokenBudgetExhausted         monthly token requests spent; until the next month
    └── SlotWaitTimeout              no slot within max_wait (busy, 429 backoff, per-minute)

Clocks: every process stamps with its own (injectable) clock, so the hosts of a fleet
must keep their clocks in step (NTP); a skew of e seconds shortens the spacing by e.

Why the interval learns: the governor spaces the moments calls may *start*, the API measures
their *arrivals*. Between the two lie process scheduling, connection set-up and the network,
so on a busy host two calls granted 0.65 s apart can arrive 0.59 s apart. The configured
margin covers the usual case; a spike-arrest 429 shows it did not, and the fleet then adds
`spacing_extra` (doubling per incident, from `spacing_step` up to `spacing_cap`) until the
answers say it is enough. The extra halves every `spacing_half_life` seconds, so a passing
overload does not slow the fleet for good.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from api_client import CallSlot
from api_client.governor import CALL_KINDS
from config import Settings
from models import utcnow
from models.db import insert_if_missing
from models.tables import GovernorSlot, GovernorState
from scheduling import call_context
from scheduling.call_context import WorkerStopping
from scheduling.deferrals import QuotaExhausted, SlotWaitTimeout, TokenBudgetExhausted
from scheduling.ledger import (
    TOKEN_KIND,
    complete_call,
    count_calls,
    nth_newest_call_at,
    record_call,
)
from scheduling.policy.windows import (
    DAY_SECONDS,
    budget_window,
    decayed_spacing,
    quota_day_window,
)

__all__ = [
    "DEFAULT_SPACING_HALF_LIFE",
    "DatabaseGovernor",
    "governor_from_settings",
    "pacing_state",
]

log = logging.getLogger(__name__)

_slots = GovernorSlot.__table__  # type: ignore[attr-defined]
_state = GovernorState.__table__  # type: ignore[attr-defined]

STATE_ROW_ID = 1
DEFAULT_BACKOFF_SECONDS = 60.0
DEFAULT_SPACING_HALF_LIFE = 600.0
PARALLEL_BACKOFF_SECONDS = 1.0
TOKEN_WARNING_FRACTION = 0.9
_MINUTE = timedelta(seconds=60)

# Months (per budget) for which this process already warned that the token budget runs low.
_warned_months: set[tuple[str, int]] = set()
_warned_lock = threading.Lock()


# -- the governor ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grant:
    """What `_acquire` hands to the slot: which permit, under which claim, which ledger row."""

    slot_no: int
    holder: str
    call_id: int
    started_at: datetime
    interval: timedelta


class _Wait(NamedTuple):
    """Not yet: look again at `until`; `reason` goes on the SlotWaitTimeout if it is too late."""

    until: datetime
    reason: str


class _GovernedCall:
    """The `CallSlot` of one granted call: remembers the answer, spreads a 429 to the fleet."""

    def __init__(self, governor: DatabaseGovernor, kind: str, started_at: datetime) -> None:
        self._governor = governor
        self._kind = kind
        self._started_at = started_at
        self.status_code: int | None = None

    def record_response(
        self, status_code: int | None, retry_after: float | None, limit: str | None = None
    ) -> None:
        self.status_code = status_code
        if status_code == 429:
            named = f" ({limit})" if limit else ""
            self._governor.back_off(
                retry_after, f"429{named} on a {self._kind} call", limit, self._started_at
            )


class DatabaseGovernor:
    """`api_client.RateGovernor` for every process that shares the database.

    Needs an engine from `models.make_engine` (on SQLite every transaction must begin
    IMMEDIATE, which is what makes a transaction there exclusive). Thread-safe: threads of
    one process may share an instance, or each hold their own.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_concurrency: int,
        min_interval: float,
        rate_per_minute: int,
        daily_quota: int,
        token_monthly_budget: int,
        lease_seconds: float,
        owner: str,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 30.0,
        quota_timezone: str = "UTC",
        quota_window_seconds: float = DAY_SECONDS,
        rate_limit_backoff: float = DEFAULT_BACKOFF_SECONDS,
        poll_interval: float = 0.05,
        max_sleep: float = 0.5,
        start_lead: float = 0.02,
        late_tolerance: float = 0.002,
        spacing_step: float | None = None,
        spacing_cap: float | None = None,
        spacing_half_life: float = DEFAULT_SPACING_HALF_LIFE,
        token_budget_window: float | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if min_interval < 0 or max_wait < 0 or lease_seconds <= 0:
            raise ValueError("min_interval and max_wait must be >= 0, lease_seconds > 0")
        if rate_per_minute < 1 or daily_quota < 1 or token_monthly_budget < 1:
            raise ValueError("rate_per_minute, daily_quota and token_monthly_budget must be >= 1")
        if not 0 < poll_interval <= max_sleep:
            raise ValueError("need 0 < poll_interval <= max_sleep")
        ZoneInfo(quota_timezone)  # an unknown zone fails here, not at the first call
        self._engine = engine
        self.max_concurrency = max_concurrency
        self.min_interval = timedelta(seconds=min_interval)
        self.rate_per_minute = rate_per_minute
        self.daily_quota = daily_quota
        self.token_monthly_budget = token_monthly_budget
        self.lease = timedelta(seconds=lease_seconds)
        self.rate_limit_backoff = rate_limit_backoff
        self.owner = owner[:80]
        self.max_wait = max_wait
        self.quota_timezone = quota_timezone
        self.quota_window_seconds = quota_window_seconds
        self.token_budget_window = token_budget_window
        self.poll_interval = poll_interval
        self.max_sleep = max_sleep
        self.start_lead = timedelta(seconds=start_lead)
        self.late_tolerance = timedelta(seconds=late_tolerance)
        # A spike 429 first adds 5% of the interval, then doubles what was learned, up to
        # another whole interval (at least 1 s, for a configured interval far too short).
        self.spacing_step = (
            spacing_step if spacing_step is not None else max(0.05 * min_interval, 0.005)
        )
        self.spacing_cap = spacing_cap if spacing_cap is not None else max(min_interval, 1.0)
        self.spacing_half_life = spacing_half_life
        self._clock = clock
        self._sleep = sleep
        self._rows_ready = False
        self._rows_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"DatabaseGovernor(owner={self.owner!r}, max_concurrency={self.max_concurrency}, "
            f"min_interval={self.min_interval.total_seconds():g}, "
            f"rate_per_minute={self.rate_per_minute}, daily_quota={self.daily_quota})"
        )

    # -- RateGovernor ---------------------------------------------------------------------

    @contextlib.contextmanager
    def slot(self, kind: str, tenant_id: str) -> Iterator[CallSlot]:
        """Hold one of the fleet's call slots for one HTTP call; released even on error."""
        if kind not in CALL_KINDS:
            raise ValueError(f"unknown call kind {kind!r}; expected one of {sorted(CALL_KINDS)}")
        grant = self._acquire(kind, tenant_id)
        call = _GovernedCall(self, kind, grant.started_at)
        try:
            yield call
        finally:
            self._release(grant, call.status_code)

    def back_off(
        self,
        retry_after: float | None,
        reason: str,
        limit: str | None = None,
        call_started_at: datetime | None = None,
    ) -> datetime:
        """Hold the whole fleet back after a 429, for as long as the limit it names needs.

        `Retry-After` when the API sent one; else by `limit`: "spike" widens the interval
        (no pause: the refused call did not count, one interval is the window), "parallel"
        waits a moment for a call in flight to end, "quota" waits for the next quota day,
        and an unnamed 429 waits `rate_limit_backoff`. Only ever moves `backoff_until`
        later, so two 429s in a row keep the longer wait. Returns when calls may resume.
        `call_started_at` is when the refused call was let go, if known.
        """
        now = self._clock()
        until: datetime | None
        if retry_after is not None and retry_after > 0:
            until = now + timedelta(seconds=retry_after)
        elif limit == "spike":
            until = None
        elif limit == "parallel":
            until = now + timedelta(seconds=PARALLEL_BACKOFF_SECONDS)
        elif limit == "quota":
            until = quota_day_window(now, self.quota_timezone, self.quota_window_seconds)[1]
        else:
            until = now + timedelta(seconds=self.rate_limit_backoff)
        self._ensure_rows()
        with self._engine.begin() as connection:
            resume_at = until or now
            if limit == "spike":
                resume_at = max(resume_at, self._widen_spacing(connection, now, call_started_at))
            if until is not None:
                connection.execute(
                    update(_state)
                    .where(
                        _state.c.id == STATE_ROW_ID,
                        (_state.c.backoff_until.is_(None)) | (_state.c.backoff_until < until),
                    )
                    .values(backoff_until=until, backoff_reason=reason[:255])
                )
        if limit == "quota" and until is not None:
            log.error(
                "the API says the daily quota is spent (%s): the fleet waits until %s",
                reason,
                until,
            )
        elif until is not None:
            log.warning("API rate limit hit (%s): the fleet backs off until %s", reason, until)
        return resume_at

    def _widen_spacing(
        self, connection: Connection, now: datetime, call_started_at: datetime | None
    ) -> datetime:
        """Learn from a spike-arrest 429: add to the interval and move the next start out.

        One incident widens once: a refused call that was let go before the last widening
        could take effect (granted under the old spacing: it started less than one new
        interval after the widening) says nothing new. Without the call's start, 429s
        within two intervals of the widening count as the same incident.
        """
        state = connection.execute(
            select(_state.c.next_call_at, _state.c.spacing_extra, _state.c.spacing_raised_at)
            .where(_state.c.id == STATE_ROW_ID)
            .with_for_update()
        ).one()
        current = decayed_spacing(
            state.spacing_extra, state.spacing_raised_at, now, self.spacing_half_life
        )
        interval = self.min_interval + timedelta(seconds=current)
        raised_at = state.spacing_raised_at
        if raised_at is None:
            news = True
        elif call_started_at is not None:
            news = call_started_at >= raised_at + interval - timedelta(milliseconds=1)
        else:
            news = now - raised_at >= 2 * interval
        values: dict[str, Any] = {}
        extra = current
        if news:
            extra = min(self.spacing_cap, max(self.spacing_step, 2 * current))
            values.update(spacing_extra=extra, spacing_raised_at=now)
            log.warning(
                "spike arrest 429: the fleet now spaces calls %.3f s apart (%.3f s learned)",
                self.min_interval.total_seconds() + extra,
                extra,
            )
        next_call_at = now + self.min_interval + timedelta(seconds=extra)
        if state.next_call_at is None or state.next_call_at < next_call_at:
            values["next_call_at"] = next_call_at
        if values:
            connection.execute(update(_state).where(_state.c.id == STATE_ROW_ID).values(**values))
        return max(next_call_at, state.next_call_at or next_call_at)

    # -- acquiring ----------------------------------------------------------------------------

    def _acquire(self, kind: str, tenant_id: str) -> _Grant:
        """Wait (in short sleeps) until a call may start, then grant it; or raise.

        The wait ends at `max_wait`, or earlier at the step's last moment to start a call
        (`call_context`); a stopping process ends it at once.
        """
        self._ensure_rows()
        context = call_context.current()
        now = self._clock()
        deadline = now + timedelta(seconds=self.max_wait)
        if context.start_by is not None and context.start_by < deadline:
            deadline = context.start_by
        while True:
            if call_context.stopping.is_set():
                raise WorkerStopping(self._clock())
            outcome = self._try_grant(kind, tenant_id, deadline, context.job_id)
            if isinstance(outcome, _Grant):
                self._await_start(kind, outcome)
                return outcome
            now = self._clock()
            if outcome.until > deadline:
                raise SlotWaitTimeout(outcome.until, outcome.reason)
            pause = (outcome.until - now).total_seconds()
            self._sleep(max(0.001, min(pause, self.max_sleep)))

    def _await_start(self, kind: str, grant: _Grant) -> None:
        """Sleep to the granted start. The slot is already held (committed): whatever stops
        the sleep (a time limit, a signal) gives it back at once, not when its lease ends."""
        try:
            self._sleep_until(grant.started_at)
            late = self._clock() - grant.started_at
            if late > self.late_tolerance:
                self._push_next_call(grant.started_at + late + grant.interval)
        except BaseException:
            self._release(grant, None)
            raise
        log.debug(
            "%s call granted slot %d, %.1f ms after its start",
            kind,
            grant.slot_no,
            late.total_seconds() * 1000,
        )

    def _push_next_call(self, next_start: datetime) -> None:
        """A grant that left late (a slow commit, a cold process) moves the next start on,
        so the call after it is still one interval behind it at the API."""
        with self._engine.begin() as connection:
            connection.execute(
                update(_state)
                .where(_state.c.id == STATE_ROW_ID, _state.c.next_call_at < next_start)
                .values(next_call_at=next_start)
            )

    def _sleep_until(self, moment: datetime) -> None:
        """Sleep (in short sleeps) to a reserved start, so the call leaves on time."""
        while (pause := (moment - self._clock()).total_seconds()) > 0:
            self._sleep(min(pause, self.max_sleep))

    def _try_grant(
        self, kind: str, tenant_id: str, deadline: datetime, job_id: str | None = None
    ) -> _Grant | _Wait:
        """One short transaction: grant the call, or say when it is worth looking again.

        Raises QuotaExhausted / TokenBudgetExhausted at once, and SlotWaitTimeout when the
        earliest possible start already lies beyond the deadline.
        """
        with self._engine.begin() as connection:
            now = self._clock()
            state = connection.execute(
                select(
                    _state.c.next_call_at,
                    _state.c.backoff_until,
                    _state.c.backoff_reason,
                    _state.c.spacing_extra,
                    _state.c.spacing_raised_at,
                )
                .where(_state.c.id == STATE_ROW_ID)
                .with_for_update()
            ).one()
            self._check_budgets(connection, kind, now)
            interval = self.min_interval + timedelta(
                seconds=decayed_spacing(
                    state.spacing_extra, state.spacing_raised_at, now, self.spacing_half_life
                )
            )

            if state.backoff_until is not None and state.backoff_until > now:
                reason = f"fleet backoff after {state.backoff_reason or 'a 429'}"
                if state.backoff_until > deadline:
                    raise SlotWaitTimeout(state.backoff_until, reason)
                return _Wait(state.backoff_until, reason)

            # Starts lie a little ahead, so that the grant's commit is done by then.
            start = now + self.start_lead
            if state.next_call_at is not None and state.next_call_at > start:
                start = state.next_call_at
            if kind != TOKEN_KIND:
                minute_full_until = self._per_minute_free_at(connection, now)
                if minute_full_until is not None and minute_full_until > start:
                    start = minute_full_until
            # A start at most one interval ahead is reserved now and slept to with the
            # slot held: the call then leaves at its start, not one commit's time after it
            # (the API measures arrivals, and commit times vary by milliseconds).
            if start > now + self.start_lead + interval:
                reason = "waiting for the fleet's call interval or per-minute cap"
                if start > deadline:
                    raise SlotWaitTimeout(start, reason)
                return _Wait(start - interval, reason)

            free = connection.execute(
                select(_slots.c.slot_no, _slots.c.holder, _slots.c.lease_expires_at)
                .where(
                    _slots.c.slot_no <= self.max_concurrency,
                    _slots.c.holder.is_(None) | (_slots.c.lease_expires_at <= now),
                )
                .order_by(_slots.c.slot_no)
                .limit(1)
            ).first()
            if free is None:
                reason = f"all {self.max_concurrency} API call slots busy"
                look_again = now + timedelta(seconds=self.poll_interval)
                if look_again > deadline:
                    raise SlotWaitTimeout(self._busy_retry_at(connection, now), reason)
                return _Wait(look_again, reason)

            holder = f"{self.owner}:{uuid.uuid4().hex[:12]}"
            taken = connection.execute(
                update(_slots)
                .where(
                    _slots.c.slot_no == free.slot_no,
                    _slots.c.holder.is_(None) | (_slots.c.lease_expires_at <= now),
                )
                .values(holder=holder, acquired_at=now, lease_expires_at=now + self.lease)
            )
            if taken.rowcount != 1:  # a writer outside the state lock got there first
                return _Wait(now, "slot taken meanwhile")
            if free.holder is not None:
                log.warning(
                    "API call slot %d reclaimed from %s, whose lease ran out at %s",
                    free.slot_no,
                    free.holder,
                    free.lease_expires_at,
                )
            connection.execute(
                update(_state)
                .where(_state.c.id == STATE_ROW_ID)
                .values(next_call_at=start + interval)
            )
            call_id = record_call(
                connection, at=start, kind=kind, tenant_id=tenant_id, job_id=job_id
            )
        return _Grant(free.slot_no, holder, call_id, start, interval)

    def _check_budgets(self, connection: Connection, kind: str, now: datetime) -> None:
        """Raise at once when the daily quota (API calls) or token budget (tokens) is spent."""
        if kind == TOKEN_KIND:
            start, end = budget_window(now, self.quota_timezone, self.token_budget_window)
            used = count_calls(connection, start, end, tokens=True)
            if used >= self.token_monthly_budget:
                raise TokenBudgetExhausted(
                    end,
                    f"{used} of {self.token_monthly_budget} token requests this month spent",
                )
            if used + 1 >= TOKEN_WARNING_FRACTION * self.token_monthly_budget:
                self._warn_token_budget(start, used + 1)
            return
        start, end = quota_day_window(now, self.quota_timezone, self.quota_window_seconds)
        used = count_calls(connection, start, end, tokens=False)
        if used >= self.daily_quota:
            raise QuotaExhausted(end, f"{used} of {self.daily_quota} API calls today spent")

    def _warn_token_budget(self, month_start: datetime, requests: int) -> None:
        key = (month_start.isoformat(), self.token_monthly_budget)
        with _warned_lock:
            if key in _warned_months:
                return
            _warned_months.add(key)
        log.warning(
            "token request %d of a monthly budget of %d: the budget is nearly spent",
            requests,
            self.token_monthly_budget,
        )

    def _per_minute_free_at(self, connection: Connection, now: datetime) -> datetime | None:
        """When the call `rate_per_minute` calls back leaves the 60 s window, if it is in it."""
        oldest_counted = nth_newest_call_at(connection, self.rate_per_minute, after=now - _MINUTE)
        return None if oldest_counted is None else oldest_counted + _MINUTE

    def _busy_retry_at(self, connection: Connection, now: datetime) -> datetime:
        """When a busy slot is free at the latest: the earliest lease end, within max_wait."""
        earliest = connection.execute(
            select(func.min(_slots.c.lease_expires_at)).where(
                _slots.c.slot_no <= self.max_concurrency, _slots.c.holder.is_not(None)
            )
        ).scalar()
        cap = now + timedelta(seconds=max(self.max_wait, self.poll_interval))
        return cap if earliest is None or earliest > cap else max(earliest, now)

    # -- releasing ------------------------------------------------------------------------------

    def _release(self, grant: _Grant, status_code: int | None) -> None:
        """Free the slot and complete the ledger row; a failure here must not hide the call's
        own outcome, and the lease frees the slot anyway."""
        duration = self._clock() - grant.started_at
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    update(_slots)
                    .where(_slots.c.slot_no == grant.slot_no, _slots.c.holder == grant.holder)
                    .values(holder=None, acquired_at=None, lease_expires_at=None)
                )
                complete_call(connection, grant.call_id, status_code=status_code, duration=duration)
        except SQLAlchemyError:
            log.exception(
                "could not release API call slot %d; its lease frees it in %.0fs",
                grant.slot_no,
                self.lease.total_seconds(),
            )

    # -- rows -------------------------------------------------------------------------------------

    def _ensure_rows(self) -> None:
        """Create the state row and the slot rows up to max_concurrency, once per instance."""
        if self._rows_ready:
            return
        with self._rows_lock:
            if self._rows_ready:
                return
            rows: list[tuple[Any, dict[str, Any]]] = [(_state, {"id": STATE_ROW_ID})]
            rows += [(_slots, {"slot_no": n}) for n in range(1, self.max_concurrency + 1)]
            with self._engine.begin() as connection:
                for table, values in rows:
                    insert_if_missing(connection, table, values)
            self._rows_ready = True


def pacing_state(connection: Connection) -> Any:
    """The fleet's pacing row (backoff and learned spacing), read without a lock; None
    before the first call."""
    return connection.execute(
        select(_state.c.backoff_until, _state.c.spacing_extra, _state.c.spacing_raised_at).where(
            _state.c.id == STATE_ROW_ID
        )
    ).first()


def governor_from_settings(
    engine: Engine, settings: Settings, owner: str, **overrides: Any
) -> DatabaseGovernor:
    """The governor a worker process builds from its settings (keywords override them)."""
    arguments: dict[str, Any] = {
        "max_concurrency": settings.max_concurrency,
        "min_interval": settings.min_interval,
        "rate_per_minute": settings.rate_per_minute,
        "daily_quota": settings.daily_quota,
        "token_monthly_budget": settings.token_monthly_budget,
        "lease_seconds": settings.lease_seconds,
        "quota_timezone": settings.quota_timezone,
        "quota_window_seconds": settings.quota_window,
        "rate_limit_backoff": settings.rate_limit_backoff,
        "token_budget_window": settings.token_budget_window,
    }
    arguments.update(overrides)
    return DatabaseGovernor(engine, owner=owner, **arguments)
