"""The dispatcher's plan: which due work starts now, and which tenants get a new window.

The database is the queue of record. Each pass (`plan_dispatch`) reads what is due, how
much the broker already holds, which tenants hold a valid token (an open delivery window),
and asks the pacer for new windows, most urgent tenants first. It returns the work to
publish, in order (`scheduling.policy.dispatch.choose_work`); `worker.dispatcher`
publishes it. Only the tenants with an open window or a fresh grant have work chosen: a
job is never sent to fetch a token the budget cannot pay for.

Exactly one dispatcher acts at a time in a deployment (`hold_dispatcher_lease`, table
`dispatcher_lease`, owned by this module): a second one started by mistake, or the beat
task beside a dedicated `yfdocs dispatcher`, finds the lease held and does nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine

from config import Settings
from models import JobState, Priority
from models import jobs as job_table
from models.db import insert_if_missing
from models.tables import DispatcherLease
from scheduling.ledger import calls_in_quota_window
from scheduling.policy.dispatch import Candidate, WorkClass, choose_work, room_in_broker
from scheduling.policy.pacing import TenantDemand, most_urgent
from scheduling.policy.quota import CALLS_PER_LIVE_DOCUMENT
from scheduling.token_windows import WindowGrant, grant_window, open_windows, outstanding_grants

__all__ = ["DispatchPlan", "hold_dispatcher_lease", "plan_dispatch", "work_class"]

_lease = DispatcherLease.__table__  # type: ignore[attr-defined]
LEASE_ROW_ID = 1


@dataclass
class DispatchPlan:
    """One pass's decisions."""

    room: int
    chosen: list[Candidate] = field(default_factory=list)
    states: dict[str, JobState] = field(default_factory=dict)
    grants: list[WindowGrant] = field(default_factory=list)
    waiting_for_window: dict[str, int] = field(default_factory=dict)


def work_class(job: job_table.DueJob) -> WorkClass:
    """Polls first; then live uploads on their first attempt; backfill and retries last."""
    if job.state is JobState.POLLING:
        return WorkClass.POLL
    if job.priority <= Priority.LIVE and job.attempts == 0:
        return WorkClass.LIVE_UPLOAD
    return WorkClass.BACKFILL_OR_RETRY


def plan_dispatch(
    engine: Engine,
    settings: Settings,
    now: datetime,
    *,
    first_poll_delay: Callable[[str], float] | None = None,
) -> DispatchPlan:
    """Decide this pass (writes only the pacer's grants and the round robin's carried
    credit; publishing is the caller's).

    `first_poll_delay(tenant)` is how long the tenant's tickets usually take: an upload
    starts in an open window only while the window lasts that long, so its status call
    falls inside it and not into the tenant's next window.
    """
    stale_before = now - timedelta(seconds=settings.republish_after)
    room = room_in_broker(
        fleet_concurrency=settings.max_concurrency,
        ready_factor=settings.dispatch_ready_factor,
        in_broker=job_table.unclaimed_in_broker(engine, since=stale_before),
    )
    plan = DispatchPlan(room=room)
    if room == 0:
        return plan
    due = job_table.due_work(engine, now=now, stale_before=stale_before, per_tenant=room)
    if not due:
        return plan
    plan.states = {job.job_id: job.state for job in due}
    candidates = [Candidate(job.job_id, job.tenant_id, work_class(job), job.due_at) for job in due]
    open_until = open_windows(engine, now=now, margin_seconds=settings.token_refresh_margin)
    windows = set(open_until)
    with engine.connect() as connection:
        windows |= set(outstanding_grants(connection, now))
    closing = _windows_closing_for_uploads(open_until, settings, now, first_poll_delay)
    needing: dict[str, list[job_table.DueJob]] = {}
    for job in due:
        if job.tenant_id not in windows:
            needing.setdefault(job.tenant_id, []).append(job)
    demands = [
        TenantDemand(
            tenant_id=tenant,
            live=any(job.priority <= Priority.LIVE for job in jobs),
            # The documents' arrival, not the due time a quota wait moved to tomorrow:
            # a tenant that waited longest keeps its place in line.
            waiting_since=min(job.created_at for job in jobs),
        )
        for tenant, jobs in needing.items()
    ]
    if not _calls_left_for_a_window(engine, settings, now):
        demands = []  # a window now would spend a token on calls the quota cannot pay
    for demand in most_urgent(demands):
        reason = "live work waits" if demand.live else "backfill waits"
        grant = grant_window(
            engine, settings, demand.tenant_id, live=demand.live, now=now, reason=reason
        )
        if grant is None:
            continue  # the pace allows none now (a live tenant may still pass in the reserve)
        plan.grants.append(grant)
        windows.add(demand.tenant_id)
    plan.waiting_for_window = {
        tenant: len(jobs) for tenant, jobs in needing.items() if tenant not in windows
    }
    eligible = [
        candidate
        for candidate in candidates
        if candidate.tenant_id in windows
        and not (candidate.work is not WorkClass.POLL and candidate.tenant_id in closing)
    ]
    credit = _load_fair_share(engine)
    before = dict(credit)
    plan.chosen = choose_work(eligible, room, settings.tenant_weight_map, credit=credit)
    if credit != before:  # most passes of an idle fleet change nothing: no write
        _save_fair_share(engine, credit)
    return plan


def _load_fair_share(engine: Engine) -> dict[str, float]:
    with engine.connect() as connection:
        stored = connection.execute(
            select(_lease.c.fair_share).where(_lease.c.id == LEASE_ROW_ID)
        ).scalar()
    try:
        credit = json.loads(stored) if stored else {}
    except ValueError:
        return {}  # unreadable: fairness starts afresh, nothing else depends on it
    return (
        {str(key): float(value) for key, value in credit.items()}
        if isinstance(credit, dict)
        else {}
    )


def _save_fair_share(engine: Engine, credit: dict[str, float]) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(_lease)
            .where(_lease.c.id == LEASE_ROW_ID)
            .values(fair_share=json.dumps(credit, sort_keys=True))
        )


def _windows_closing_for_uploads(
    open_until: dict[str, datetime],
    settings: Settings,
    now: datetime,
    first_poll_delay: Callable[[str], float] | None,
) -> set[str]:
    """The tenants whose open window ends before a ticket uploaded now would be polled."""
    if first_poll_delay is None:
        return set()
    margin = timedelta(seconds=settings.token_refresh_margin)
    return {
        tenant
        for tenant, expires_at in open_until.items()
        if expires_at - margin - now < timedelta(seconds=first_poll_delay(tenant))
    }


def _calls_left_for_a_window(engine: Engine, settings: Settings, now: datetime) -> bool:
    """Whether today's quota still pays for a document's calls in a new window."""
    calls, _ = calls_in_quota_window(
        engine,
        now=now,
        quota_timezone=settings.quota_timezone,
        quota_window_seconds=settings.quota_window,
    )
    return settings.daily_quota - calls >= CALLS_PER_LIVE_DOCUMENT


def hold_dispatcher_lease(engine: Engine, owner: str, *, now: datetime, seconds: float) -> bool:
    """Take or renew the dispatcher's lease for `owner`; False while another holds it."""
    until = now + timedelta(seconds=seconds)
    with engine.begin() as connection:
        insert_if_missing(connection, _lease, {"id": LEASE_ROW_ID})
        taken = connection.execute(
            update(_lease)
            .where(
                _lease.c.id == LEASE_ROW_ID,
                or_(
                    _lease.c.holder.is_(None),
                    _lease.c.holder == owner,
                    _lease.c.lease_until <= now,
                ),
            )
            .values(holder=owner[:128], lease_until=until)
        )
    return bool(taken.rowcount)
