"""The ledger of API calls (`api_calls`): the one module that queries it.

A call is written when the governor grants its slot, in the same transaction as the grant
(so the daily quota can never be overrun by processes racing each other, and a call whose
process died still counts: the API counted it), and completed with its status and duration
when the slot is left. The daily quota and the monthly token budget are counts of it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from models import ApiCall
from scheduling.policy.windows import DAY_SECONDS, quota_day_window

__all__ = [
    "TOKEN_KIND",
    "calls_in_quota_window",
    "calls_since",
    "complete_call",
    "completed_call_counts",
    "count_calls",
    "job_calls_since",
    "nth_newest_call_at",
    "rate_limited_counts",
    "record_call",
]

_calls = ApiCall.__table__  # type: ignore[attr-defined]

TOKEN_KIND = "token"  # noqa: S105 - a call kind, not a secret


def count_calls(connection: Connection, start: datetime, end: datetime, *, tokens: bool) -> int:
    """Calls in [start, end): token requests if `tokens`, else API calls."""
    kind_filter = _calls.c.kind == TOKEN_KIND if tokens else _calls.c.kind != TOKEN_KIND
    statement = (
        select(func.count())
        .select_from(_calls)
        .where(_calls.c.at >= start, _calls.c.at < end, kind_filter)
    )
    return int(connection.execute(statement).scalar_one())


def calls_in_quota_window(
    engine: Engine,
    *,
    now: datetime,
    quota_timezone: str = "UTC",
    quota_window_seconds: float = DAY_SECONDS,
) -> tuple[int, datetime]:
    """API calls (not token requests) counted in the quota window that holds `now`, and
    when that window ends: the one ledger read the upload-priority rule needs."""
    start, end = quota_day_window(now, quota_timezone, quota_window_seconds)
    with engine.connect() as connection:
        return count_calls(connection, start, end, tokens=False), end


def calls_since(connection: Connection, start: datetime, end: datetime) -> int:
    """API calls (not token requests) in (start, end]."""
    return int(
        connection.execute(
            select(func.count())
            .select_from(_calls)
            .where(_calls.c.at > start, _calls.c.at <= end, _calls.c.kind != TOKEN_KIND)
        ).scalar_one()
    )


def nth_newest_call_at(connection: Connection, n: int, *, after: datetime) -> datetime | None:
    """When the n-th newest API call after `after` started, if there are n of them.

    Reads at most n rows of the `at` index, newest first.
    """
    at: datetime | None = connection.execute(
        select(_calls.c.at)
        .where(_calls.c.at > after, _calls.c.kind != TOKEN_KIND)
        .order_by(_calls.c.at.desc())
        .offset(n - 1)
        .limit(1)
    ).scalar()
    return at


def record_call(
    connection: Connection, *, at: datetime, kind: str, tenant_id: str, job_id: str | None = None
) -> int:
    """Write a granted call into the ledger (with the job it is made for); returns its id."""
    inserted = connection.execute(
        insert(_calls).values(at=at, kind=kind, tenant_id=tenant_id[:64], job_id=job_id)
    )
    key = inserted.inserted_primary_key
    assert key is not None
    return int(key[0])


def job_calls_since(engine: Engine, job_id: str, *, kind: str, since: datetime) -> int:
    """How many calls of `kind` were granted for the job at or after `since`."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(_calls)
                .where(_calls.c.job_id == job_id, _calls.c.kind == kind, _calls.c.at >= since)
            ).scalar_one()
        )


def complete_call(
    connection: Connection,
    call_id: int,
    *,
    status_code: int | None,
    duration: timedelta,
    limit_name: str | None = None,
) -> None:
    """Complete a call's row with how it ended (and, for a 429, the limit it named)."""
    connection.execute(
        update(_calls)
        .where(_calls.c.id == call_id)
        .values(
            status_code=status_code,
            duration_ms=max(0, round(duration.total_seconds() * 1000)),
            limit_name=limit_name[:16] if limit_name else None,
        )
    )


def completed_call_counts(engine: Engine) -> dict[tuple[str, int | None], int]:
    """Every completed call in the ledger, by (kind, HTTP status; None: no answer came).

    A call still in flight (its row not yet completed) is left out, so that a count never
    moves from one status to another: each only grows.
    """
    with engine.connect() as connection:
        rows = connection.execute(
            select(_calls.c.kind, _calls.c.status_code, func.count())
            .where(_calls.c.duration_ms.is_not(None))
            .group_by(_calls.c.kind, _calls.c.status_code)
        ).all()
    return {(str(kind), status): int(count) for kind, status, count in rows}


def rate_limited_counts(engine: Engine) -> dict[str | None, int]:
    """The calls the API refused with a 429, by the limit it named (None: named none)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(_calls.c.limit_name, func.count())
            .where(_calls.c.status_code == 429)
            .group_by(_calls.c.limit_name)
        ).all()
    return {limit: int(count) for limit, count in rows}
