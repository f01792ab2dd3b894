"""Pulling each tenant's persons from Youforce, and queuing the jobs that now match.

A sync reads the `persons` reader as a delta: `changedAfter` the watermark stored by the
last sync (none: a full read), `take=1000`, following `nextLink` exactly as given (the
client does). Live records replace what was known of the person; records that come back
`isDeleted` are removed. Each page is written in one transaction, and the watermark only
after the last page, so a sync killed half-way reads the same changes again next time.

The watermark is the latest `lastModified` among the records read, held at least
`WATERMARK_MARGIN` before the sync began (a record changed while the pages were read, on
a page already passed, is then read again next time), and never moved back. A read that
brought records but no `lastModified` (only deletions, or a reader without that field)
moves it to the start of the sync less the margin; a read that brought nothing leaves it.

After a sync the tenant's `unmatched` jobs are matched again (`rematch_unmatched_jobs`):
a job whose learner is now known gets its personCode and moves to `queued` with an event,
unpublished, for the dispatcher to send like any other; one that still is not keeps
waiting, with its reason brought up to date.

A sync needs the tenant's token like any upload, so it goes through the delivery windows
(`scheduling.token_windows`): a tenant whose window is open syncs on its token; one without
asks the token pacer for a window first (`request_window`), at backfill's pace, so the
month's token budget is spent no faster for persons than for documents. When the pace
allows none now, the token fetch is refused (`TokenWindowClosed`) and the tenant is
reported not synced, its watermark kept for the next try.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from api_client import HrRecord, YouforceError
from config import Settings
from intake.callers import key_tenants
from intake.learners import match_learner
from intake.validation import ValidationError, validate_person_code
from models import UploadJob, utcnow
from models import jobs as job_table
from models import persons as person_table
from models.errors import YfdocsError
from models.persons import PersonEntry
from scheduling.token_windows import grant_window, open_windows, outstanding_grants

__all__ = [
    "PAGE_SIZE",
    "WATERMARK_MARGIN",
    "PersonSyncReport",
    "PersonsReader",
    "RematchReport",
    "TenantSyncFailure",
    "rematch_unmatched_jobs",
    "request_window",
    "sync_persons",
    "sync_tenants",
    "tenants_to_sync",
]

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # the API's largest page
WATERMARK_MARGIN = timedelta(minutes=10)
REMATCH_BATCH = 500
_LAST_MODIFIED_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class PersonsReader(Protocol):
    """What a sync needs of the Youforce client: the `persons` reader, page after page."""

    def persons(
        self, tenant_id: str, *, changed_after: datetime | None = None, take: int | None = None
    ) -> Iterator[HrRecord]: ...


@dataclass(frozen=True)
class RematchReport:
    """What matching the waiting jobs again did."""

    matched: int
    still_unmatched: int


@dataclass(frozen=True)
class PersonSyncReport:
    """What one tenant's sync read and wrote."""

    tenant_id: str
    full: bool
    changed: int
    deleted: int
    skipped: int
    persons: int
    changed_after: datetime | None
    rematch: RematchReport

    def __str__(self) -> str:
        kind = "full" if self.full else "delta"
        watermark = (
            "none" if self.changed_after is None else f"{self.changed_after:%Y-%m-%dT%H:%M:%S}Z"
        )
        return (
            f"tenant {self.tenant_id}: {kind} sync, {self.changed} changed, {self.deleted} "
            f"deleted, {self.skipped} skipped, {self.persons} persons known, changes read "
            f"up to {watermark}; {self.rematch.matched} unmatched job(s) matched, "
            f"{self.rematch.still_unmatched} still waiting"
        )


def _last_modified(record: HrRecord) -> datetime | None:
    value = record.get("lastModified")
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, _LAST_MODIFIED_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _emails(record: HrRecord) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    entries: Any = record.get("emailAddresses") or []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        address, kind = entry.get("address"), entry.get("type")
        if isinstance(address, str) and "@" in address and len(address) <= 320:
            found.append((address.strip().lower(), str(kind or "")[:32]))
    return tuple(found)


def _entry(record: HrRecord) -> PersonEntry | None:
    """The person to store, or None for a record that cannot serve mapping."""
    code = record.get("personCode")
    if record.id is None or len(record.id) > 64 or not isinstance(code, str):
        return None
    try:
        person_code = validate_person_code(code)
    except ValidationError:
        return None
    return PersonEntry(record.id, person_code, _emails(record), _last_modified(record))


def _batches(records: Iterable[HrRecord], size: int) -> Iterator[list[HrRecord]]:
    batch: list[HrRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _next_watermark(
    old: datetime | None, latest: datetime | None, *, read_any: bool, started: datetime
) -> datetime | None:
    if not read_any:
        return old
    ceiling = started - WATERMARK_MARGIN
    candidate = ceiling if latest is None else min(latest, ceiling)
    return candidate if old is None else max(old, candidate)


def sync_persons(
    engine: Engine,
    reader: PersonsReader,
    tenant_id: str,
    *,
    now: datetime | None = None,
    page_size: int = PAGE_SIZE,
) -> PersonSyncReport:
    """Bring the tenant's persons up to date, then queue the waiting jobs that now match
    (the dispatcher publishes them)."""
    started = now or utcnow()
    state = person_table.sync_state(engine, tenant_id)
    old_watermark = state.changed_after if state is not None else None
    changed = deleted = skipped = 0
    latest: datetime | None = None
    read_any = False
    records = reader.persons(tenant_id, changed_after=old_watermark, take=page_size)
    for batch in _batches(records, page_size):
        read_any = True
        upserts: list[PersonEntry] = []
        deletions: list[str] = []
        for record in batch:
            if record.is_deleted:
                if record.id is not None:
                    deletions.append(record.id)
                continue
            entry = _entry(record)
            if entry is None:
                skipped += 1
                continue
            upserts.append(entry)
            if entry.changed_at is not None:
                latest = entry.changed_at if latest is None else max(latest, entry.changed_at)
        # The same id twice in one page: the later record is the newer one.
        by_id = {entry.person_id: entry for entry in upserts}
        person_table.apply_person_changes(
            engine, tenant_id, upserts=list(by_id.values()), deletions=deletions, now=started
        )
        changed += len(by_id)
        deleted += len(deletions)
    watermark = _next_watermark(old_watermark, latest, read_any=read_any, started=started)
    person_table.record_sync(engine, tenant_id, changed_after=watermark, synced_at=utcnow())
    if skipped:
        log.warning(
            "tenant %s: %d person record(s) without a usable personCode", tenant_id, skipped
        )
    return PersonSyncReport(
        tenant_id=tenant_id,
        full=old_watermark is None,
        changed=changed,
        deleted=deleted,
        skipped=skipped,
        persons=person_table.count_persons(engine, tenant_id),
        changed_after=watermark,
        rematch=rematch_unmatched_jobs(engine, tenant_id),
    )


def rematch_unmatched_jobs(
    engine: Engine, tenant_id: str, *, now: datetime | None = None
) -> RematchReport:
    """Queue the tenant's waiting jobs whose learner is now known: each becomes `queued`
    and unpublished, and the dispatcher sends it in the fleet's order of work."""
    matched = waiting = 0
    for job in _unmatched(engine, tenant_id):
        at = now or utcnow()
        found = match_learner(
            engine,
            tenant_id,
            email=job.learner_email,
            employee_number=job.learner_employee_number,
        )
        if found.person_code is None:
            waiting += 1
            if found.reason is not None:
                job_table.note_unmatched_reason(engine, job.id, found.reason, now=at)
            continue
        queued = job_table.match_unmatched_job(
            engine,
            job.id,
            found.person_code,
            reason=f"learner matched to personCode {found.person_code} after a persons sync",
            now=at,
        )
        if queued is not None:
            matched += 1
    return RematchReport(matched=matched, still_unmatched=waiting)


def _unmatched(engine: Engine, tenant_id: str) -> Iterator[UploadJob]:
    """Every waiting job of the tenant, a batch at a time."""
    last: UploadJob | None = None
    while True:
        batch = job_table.unmatched_jobs(engine, tenant_id, limit=REMATCH_BATCH, after=last)
        yield from batch
        if len(batch) < REMATCH_BATCH:
            return
        last = batch[-1]


@dataclass(frozen=True)
class TenantSyncFailure:
    """A tenant whose sync could not run now: the API refused, or a budget said wait."""

    tenant_id: str
    error: str

    def __str__(self) -> str:
        return f"tenant {self.tenant_id}: not synced: {self.error}"


def request_window(
    engine: Engine, settings: Settings, tenant_id: str, *, now: datetime | None = None
) -> bool:
    """Make sure the tenant may have a token for its sync: True when its delivery window is
    open or the token pacer grants one now (or one is granted already), False when the
    pace allows none now (the sync's token fetch will then be refused, not made).

    The grant is asked for as backfill work (`live=False`): a persons sync is never more
    urgent than a learner's certificate."""
    at = now or utcnow()
    if tenant_id in open_windows(engine, now=at, margin_seconds=settings.token_refresh_margin):
        return True
    granted = grant_window(engine, settings, tenant_id, live=False, now=at, reason="persons sync")
    if granted is not None:
        return True
    with engine.connect() as connection:
        return tenant_id in outstanding_grants(connection, at)


def sync_tenants(
    engine: Engine, reader: PersonsReader, tenants: Iterable[str], *, settings: Settings
) -> list[PersonSyncReport | TenantSyncFailure]:
    """Sync each tenant in turn, each in a delivery window (`request_window`); one the API
    refuses (no Get_Basic scope, a quota spent) or the pacer gives no window now does not
    keep the others from their sync. Its watermark stays, so nothing is missed."""
    outcomes: list[PersonSyncReport | TenantSyncFailure] = []
    for tenant_id in tenants:
        try:
            request_window(engine, settings, tenant_id)
            outcomes.append(sync_persons(engine, reader, tenant_id))
        except (YouforceError, YfdocsError) as exc:
            log.warning("tenant %s: persons sync did not run: %s", tenant_id, exc)
            outcomes.append(TenantSyncFailure(tenant_id, str(exc)))
    return outcomes


def tenants_to_sync(engine: Engine) -> list[str]:
    """The tenants learner mapping serves: those the intake's keys deliver to, and any
    with a job waiting for its learner."""
    return sorted(key_tenants(engine) | job_table.tenants_with_unmatched_jobs(engine))
