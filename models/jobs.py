"""The one module that queries the job tables (`upload_jobs`, `job_events`).

As procrastinate's `manager.py` does for its jobs, this module holds every read and write of
a job row that the service makes: the producer's insert and its look-ups by key and by
content, the steps' claims under a lease and the recording of their outcomes, the sweeper's
scans for what is due, the scheduling rules' counts, the metrics' counts, the views'
listings, and the matching of `unmatched` jobs once their learner is known. Other rooms
call these functions; none of them builds a query on these tables itself, so an index, a
lock or a state rule is read and changed in one place.

Changes of state go through `models.history` (`change_state`, `record_note`), which writes
the event row with every change: no transition without its line in the history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, exists, extract, func, or_, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from models.db import session_scope
from models.errors import Decision, YfdocsError
from models.history import change_state, record_created, record_note
from models.states import TERMINAL_STATES, JobState, Priority
from models.tables import JobEvent, UploadJob

__all__ = [
    "STEP_OUTCOMES",
    "UNFINISHED_STATES",
    "AmbiguousJobId",
    "CompletedTicket",
    "DueJob",
    "DurationHistogram",
    "JobNotFound",
    "JobNotRetryable",
    "WaitingWork",
    "count_created_since",
    "count_jobs",
    "counts_by_state",
    "counts_by_state_and_tenant",
    "delete_unneeded_documents",
    "due_work",
    "expired_lease_ids",
    "find_by_idempotency_key",
    "find_job",
    "find_same_content",
    "held_job",
    "insert_job_unless_same_content",
    "job_events",
    "jobs_by_ids",
    "last_entered_at",
    "list_jobs",
    "lock_storage_key",
    "locked_job",
    "lost_message_candidates",
    "mark_for_redispatch",
    "mark_published",
    "match_unmatched_job",
    "note_unmatched_reason",
    "oldest_waiting_since",
    "peek_queued_priority",
    "peek_state",
    "recent_completed_tickets",
    "release_holds_until",
    "release_if_held",
    "requeue_finished_job",
    "step_outcome_counts",
    "stored_document_in_use",
    "stored_document_keys",
    "tenants_with_unmatched_jobs",
    "ticket_duration_histogram",
    "unclaimed_in_broker",
    "unmark_published",
    "unmatched_jobs",
    "waiting_work",
]


class JobNotFound(YfdocsError, LookupError):
    """No job has this id (or id prefix)."""

    decision = Decision.REFUSE


class AmbiguousJobId(YfdocsError, LookupError):
    """The id prefix fits more than one job."""

    decision = Decision.REFUSE


class JobNotRetryable(YfdocsError):
    """`yfdocs retry` was asked for a job that is not failed or expired, or cannot be sent."""

    decision = Decision.REFUSE


# -- the producer ------------------------------------------------------------------------------


def find_by_idempotency_key(engine: Engine, key: str) -> UploadJob | None:
    """The job that holds this idempotency key, if any."""
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(select(UploadJob).where(col(UploadJob.idempotency_key) == key)).first()


# An `unmatched` job has no personCode yet (""): the learner as its event named them
# (e-mail, employee number) stands in for it in the job's content.
UnmatchedLearner = tuple[str | None, str | None]


def find_same_content(
    engine: Engine,
    *,
    tenant_id: str,
    person_code: str,
    document_type: str,
    sha256: str,
    learner: UnmatchedLearner | None = None,
) -> UploadJob | None:
    """The oldest job for this content (tenant, personCode, type and PDF), under any key;
    with `learner`, the oldest `unmatched` one for that learner."""
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(
            _same_content(tenant_id, person_code, document_type, sha256, learner)
        ).first()


def insert_job_unless_same_content(
    engine: Engine, job: UploadJob, *, reason: str, again: str, now: datetime
) -> tuple[UploadJob, bool]:
    """Insert `job` with the first line of its history, unless a job for the same content
    is there already, under whatever key; returns the job and whether it was inserted.

    A job already there (the oldest, if several) gets `again` in its history when it was
    asked for under another key than `job`'s. Producers of the same content take turns:
    PostgreSQL locks the content for the transaction (an advisory lock), SQLite's BEGIN
    IMMEDIATE locks the file; the later one finds the earlier one's job. The look-up uses
    `ix_upload_jobs_tenant_person`. Raises `sqlalchemy.exc.IntegrityError` when another
    producer inserted the same idempotency key for other content first; nothing is
    written then.
    """
    content = (job.tenant_id, job.person_code, job.document_type, job.sha256)
    learner = _unmatched_learner(job)
    lock_material = content if learner is None else (*content, *(part or "" for part in learner))
    with session_scope(engine) as session:
        if engine.dialect.name == "postgresql":
            session.execute(
                text("SELECT pg_advisory_xact_lock(:space, :key)"),
                {"space": CONTENT_LOCK_SPACE, "key": _content_lock_key(lock_material)},
            )
        existing = session.exec(_same_content(*content, learner)).first()
        if existing is not None:
            if existing.idempotency_key != job.idempotency_key:
                record_note(session, existing, reason=again, now=now)
            return existing, False
        lock_storage_key(session, job.storage_key)  # retention must see this job, or go first
        session.add(job)
        session.flush()  # the job row first: the event's foreign key points at it
        record_created(session, job, reason=reason, now=now)
        return job, True


CONTENT_LOCK_SPACE = 0x79666463  # the first key of the two-key advisory locks on content


def _unmatched_learner(job: UploadJob) -> UnmatchedLearner | None:
    if job.job_state is not JobState.UNMATCHED:
        return None
    return (job.learner_email, job.learner_employee_number)


def _same_content(
    tenant_id: str,
    person_code: str,
    document_type: str,
    sha256: str,
    learner: UnmatchedLearner | None = None,
) -> SelectOfScalar[UploadJob]:
    statement = select(UploadJob).where(
        col(UploadJob.tenant_id) == tenant_id,
        col(UploadJob.person_code) == person_code,
        col(UploadJob.document_type) == document_type,
        col(UploadJob.sha256) == sha256,
    )
    if learner is not None:
        email, employee_number = learner
        statement = statement.where(
            col(UploadJob.state) == JobState.UNMATCHED.value,
            col(UploadJob.learner_email).is_not_distinct_from(email),
            col(UploadJob.learner_employee_number).is_not_distinct_from(employee_number),
        )
    return statement.order_by(col(UploadJob.created_at), col(UploadJob.id)).limit(1)


def _content_lock_key(content: tuple[str, ...]) -> int:
    digest = hashlib.sha256("\x1f".join(content).encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def mark_published(engine: Engine, job_id: str, *, state: JobState, now: datetime) -> bool:
    """Mark the step the job waits for in `state` as about to be published; False if the
    job has moved on or a worker holds it, and then nothing may be published.

    The dispatcher marks *before* it publishes: a worker can take the message and finish
    the step within a millisecond, and a mark written after that would hide the job's
    next step until the mark went stale.
    """
    statement = (
        update(UploadJob)
        .where(
            col(UploadJob.id) == job_id,
            col(UploadJob.state) == state.value,
            or_(col(UploadJob.lease_expires_at).is_(None), col(UploadJob.lease_expires_at) < now),
        )
        .values(published_at=now)
    )
    with session_scope(engine) as session:
        result: Any = session.execute(statement)
        return bool(result.rowcount)


def unmark_published(engine: Engine, job_id: str, *, marked_at: datetime) -> None:
    """Undo `mark_published` when the broker refused the message, unless a step has
    changed the mark since."""
    statement = (
        update(UploadJob)
        .where(col(UploadJob.id) == job_id, col(UploadJob.published_at) == marked_at)
        .values(published_at=None)
    )
    with session_scope(engine) as session:
        session.execute(statement)


def mark_for_redispatch(
    engine: Engine, job_id: str, *, state: JobState, now: datetime, note: str
) -> bool:
    """Clear the publish mark of a job whose message was lost, with a word in its history,
    unless it has moved on or a worker has claimed it since; True if it was marked."""
    with locked_job(engine, job_id) as (session, job):
        if job is None or job.state != state.value:
            return False
        if job.lease_expires_at is not None and job.lease_expires_at >= now:
            return False
        job.published_at = None
        record_note(session, job, reason=note, now=now)
        return True


def requeue_finished_job(engine: Engine, job_id: str, *, reason: str, now: datetime) -> UploadJob:
    """Send a failed or expired job again from the start; raises `JobNotRetryable` otherwise."""
    with locked_job(engine, job_id) as (session, job):
        if job is None:
            raise JobNotRetryable(f"no job {job_id}")
        if job.job_state not in TERMINAL_STATES - {JobState.COMPLETE}:
            raise JobNotRetryable(
                f"job {job_id} is {job.state}; only failed or expired jobs can be retried"
            )
        if job.document_deleted_at is not None:
            raise JobNotRetryable(
                f"job {job_id}: its stored PDF was deleted after the retention period; "
                "enqueue the document again"
            )
        job.attempts = 0
        job.poll_count = 0
        job.ticket_id = None
        job.uploaded_at = None
        job.next_poll_at = None
        job.not_before = None
        job.published_at = None
        change_state(session, job, JobState.QUEUED, reason=reason, now=now)
        return job


# -- claims and outcomes -----------------------------------------------------------------------


@contextmanager
def locked_job(engine: Engine, job_id: str) -> Iterator[tuple[Session, UploadJob | None]]:
    """The job row locked for one transaction (PostgreSQL: FOR UPDATE; SQLite's BEGIN
    IMMEDIATE locks the whole file), committed when the block ends without an error."""
    with session_scope(engine) as session:
        statement = select(UploadJob).where(UploadJob.id == job_id).with_for_update()
        yield session, session.exec(statement).first()


@contextmanager
def held_job(
    engine: Engine, job_id: str, state: JobState, owner: str
) -> Iterator[tuple[Session, UploadJob | None]]:
    """The job if `owner` still holds it in `state`, its lease given back; else None.

    None means the lease was lost meanwhile (the sweeper took the job back): the outcome
    in hand is no longer this worker's to record.
    """
    with locked_job(engine, job_id) as (session, job):
        yield session, job if job is not None and release_if_held(job, state, owner) else None


def release_if_held(job: UploadJob, state: JobState, owner: str) -> bool:
    """Give the job's lease back if `owner` holds it in `state`; False (and nothing changed)
    if the job has moved on or the lease went to another worker."""
    if job.job_state is not state or job.lease_owner != owner:
        return False
    job.lease_owner = None
    job.lease_expires_at = None
    return True


def peek_state(engine: Engine, job_id: str) -> JobState | None:
    """The job's state, read without a lock; None for no such job."""
    with Session(engine) as session:
        state = session.exec(select(UploadJob.state).where(UploadJob.id == job_id)).first()
    return None if state is None else JobState(state)


def last_entered_at(engine: Engine, job_id: str, state: JobState) -> datetime | None:
    """When the job last moved into `state` (its latest claim, for `uploading`)."""
    with Session(engine) as session:
        return session.exec(
            select(func.max(JobEvent.at)).where(
                col(JobEvent.job_id) == job_id,
                col(JobEvent.to_state) == state.value,
                col(JobEvent.from_state) != state.value,
            )
        ).first()


def peek_queued_priority(engine: Engine, job_id: str) -> int | None:
    """The job's priority if it is queued, read without a lock (before a claim: on SQLite a
    second connection would wait for the claim's lock)."""
    with Session(engine) as session:
        found = session.exec(
            select(UploadJob.priority, UploadJob.state).where(UploadJob.id == job_id)
        ).first()
    if found is None or found[1] != JobState.QUEUED.value:
        return None
    return int(found[0])


# -- the dispatcher -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DueJob:
    """A job whose next step is due and has no live message: what the dispatcher weighs."""

    job_id: str
    tenant_id: str
    state: JobState
    priority: int
    attempts: int
    due_at: datetime
    created_at: datetime  # the document's arrival: how long its tenant has waited


def unclaimed_in_broker(engine: Engine, *, since: datetime) -> int:
    """Jobs published since `since` that no worker has claimed yet: what the broker holds."""
    statement = (
        select(func.count())
        .select_from(UploadJob)
        .where(
            col(UploadJob.state).in_([JobState.QUEUED.value, JobState.POLLING.value]),
            col(UploadJob.published_at) > since,
            col(UploadJob.lease_expires_at).is_(None),
        )
    )
    with Session(engine) as session:
        return int(session.exec(statement).one())


def due_work(
    engine: Engine, *, now: datetime, stale_before: datetime, per_tenant: int
) -> list[DueJob]:
    """Due steps with no live message (never published, or published before
    `stale_before`), at most `per_tenant` of each kind per tenant, oldest first: polls of
    uploaded tickets, and queued uploads (live before backfill)."""
    unpublished = or_(
        col(UploadJob.published_at).is_(None), col(UploadJob.published_at) <= stale_before
    )
    polls = (
        sa_select(
            col(UploadJob.id),
            col(UploadJob.tenant_id),
            col(UploadJob.state),
            col(UploadJob.priority),
            col(UploadJob.attempts),
            col(UploadJob.next_poll_at).label("due_at"),
            col(UploadJob.created_at).label("arrived_at"),
            func.row_number()
            .over(partition_by=col(UploadJob.tenant_id), order_by=col(UploadJob.next_poll_at))
            .label("rank"),
        )
        .where(
            col(UploadJob.state) == JobState.POLLING.value,
            col(UploadJob.lease_expires_at).is_(None),
            col(UploadJob.next_poll_at) <= now,
            unpublished,
        )
        .subquery()
    )
    due_at = func.coalesce(col(UploadJob.not_before), col(UploadJob.created_at))
    uploads = (
        sa_select(
            col(UploadJob.id),
            col(UploadJob.tenant_id),
            col(UploadJob.state),
            col(UploadJob.priority),
            col(UploadJob.attempts),
            due_at.label("due_at"),
            col(UploadJob.created_at).label("arrived_at"),
            func.row_number()
            .over(
                partition_by=(col(UploadJob.tenant_id), col(UploadJob.priority)),
                order_by=(col(UploadJob.created_at), col(UploadJob.id)),
            )
            .label("rank"),
        )
        .where(
            col(UploadJob.state) == JobState.QUEUED.value,
            or_(col(UploadJob.not_before).is_(None), col(UploadJob.not_before) <= now),
            unpublished,
        )
        .subquery()
    )
    found: list[DueJob] = []
    with Session(engine) as session:
        for table in (polls, uploads):
            rows = session.execute(sa_select(table).where(table.c.rank <= per_tenant)).all()
            found += [
                DueJob(
                    job_id=row.id,
                    tenant_id=row.tenant_id,
                    state=JobState(row.state),
                    priority=row.priority,
                    attempts=row.attempts,
                    due_at=_aware(row.due_at),
                    created_at=_aware(row.arrived_at),
                )
                for row in rows
            ]
    return found


def _aware(value: Any) -> datetime:
    """A timestamp read through a raw subquery column (SQLite gives it back naive)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# -- the sweeper's scans -------------------------------------------------------------------------


def _ids(engine: Engine, statement: SelectOfScalar[str], limit: int) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(statement.limit(limit)))


def expired_lease_ids(engine: Engine, *, now: datetime, limit: int) -> list[str]:
    """Jobs held in `uploading` or `polling` whose lease ran out before `now`."""
    held = (JobState.UPLOADING.value, JobState.POLLING.value)
    return _ids(
        engine,
        select(UploadJob.id).where(
            col(UploadJob.state).in_(held), col(UploadJob.lease_expires_at) < now
        ),
        limit,
    )


def lost_message_candidates(
    engine: Engine,
    state: JobState,
    *,
    now: datetime,
    settled: datetime,
    limit: int,
    among: set[str] | None = None,
) -> list[str]:
    """Unclaimed jobs in `state`, due and published before `settled`: oldest message first.

    Workers take message files in the order they were published, so the messages taken
    and lost are older than those still waiting: they come first in a bounded batch.
    """
    if among is not None and not among:
        return []
    if state is JobState.POLLING:
        due = col(UploadJob.next_poll_at) <= settled
    else:
        due = or_(col(UploadJob.not_before).is_(None), col(UploadJob.not_before) <= settled)
    statement = select(UploadJob.id).where(
        col(UploadJob.state) == state.value,
        col(UploadJob.published_at) <= settled,
        due,
        or_(col(UploadJob.lease_expires_at).is_(None), col(UploadJob.lease_expires_at) < now),
    )
    if among is not None:
        statement = statement.where(col(UploadJob.id).in_(among))
    return _ids(engine, statement.order_by(col(UploadJob.published_at)), limit)


def _still_needed(key_column: Any, *, cutoff: datetime, except_id: Any = None) -> Any:
    """EXISTS a job with this storage key that may still need it: unfinished, or finished
    within the retention period (and not the job `except_id`)."""
    other = aliased(UploadJob)
    condition = and_(
        col(other.storage_key) == key_column,
        or_(
            col(other.state).not_in([state.value for state in TERMINAL_STATES]),
            col(other.finished_at) >= cutoff,
        ),
    )
    if except_id is not None:
        condition = and_(condition, col(other.id) != except_id)
    return exists().where(condition)


def lock_storage_key(session: Session, storage_key: str) -> None:
    """Serialise, until the transaction ends, everything that adds or removes a user of
    this stored document: a producer's insert and retention's check-and-delete.

    PostgreSQL: a transaction-level advisory lock on the key. SQLite needs none: every
    transaction there begins IMMEDIATE and so already excludes the others.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    lock_id = int.from_bytes(hashlib.sha256(storage_key.encode()).digest()[:8], "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:lock_id)"), {"lock_id": lock_id})


def _locked_key_users(session: Session, storage_key: str, condition: Any) -> int:
    """Take the key's lock (`lock_storage_key`) and count the jobs with this key that meet
    `condition`: whatever is decided on that count holds until the transaction ends."""
    lock_storage_key(session, storage_key)
    return session.exec(
        select(func.count())
        .select_from(UploadJob)
        .where(col(UploadJob.storage_key) == storage_key)
        .where(condition)
    ).one()


def stored_document_keys(engine: Engine, *, after: str | None, limit: int) -> list[str]:
    """Up to `limit` storage keys, in key order after `after`, that some job points at whose
    stored PDF retention has not deleted: what a copy to another store must take along."""
    statement = select(UploadJob.storage_key).where(col(UploadJob.document_deleted_at).is_(None))
    if after is not None:
        statement = statement.where(col(UploadJob.storage_key) > after)
    with Session(engine) as session:
        return list(
            session.exec(statement.distinct().order_by(col(UploadJob.storage_key)).limit(limit))
        )


@contextmanager
def stored_document_in_use(engine: Engine, storage_key: str) -> Iterator[bool]:
    """Whether a job still points at this stored PDF (retention has not deleted it), with
    the key's lock held for the block: retention cannot delete it meanwhile, so a copy made
    inside the block is never left behind as a copy no job needs."""
    with session_scope(engine) as session:
        yield bool(
            _locked_key_users(session, storage_key, col(UploadJob.document_deleted_at).is_(None))
        )


def delete_unneeded_documents(
    engine: Engine,
    *,
    cutoff: datetime,
    now: datetime,
    limit: int,
    delete: Callable[[str], bool],
) -> int:
    """Delete the stored PDFs that only jobs finished before `cutoff` point at, and mark
    those jobs' documents deleted; returns how many stored documents were removed.

    Storage is content-addressed, so one file may serve several jobs: a key is deleted only
    when no job may still need it (unfinished, or finished within the period). The check,
    the delete and the marks are one step per key, under `lock_storage_key`, so a producer
    committing a new job for the same bytes meanwhile either is seen or comes after the
    delete (and then stores the bytes again). A job whose file is kept is not marked.
    `delete(key)` removes the bytes and says whether anything was there.
    """
    terminal = [state.value for state in TERMINAL_STATES]
    with Session(engine) as session:
        keys = list(
            session.exec(
                select(UploadJob.storage_key)
                .where(
                    col(UploadJob.document_deleted_at).is_(None),
                    col(UploadJob.finished_at) < cutoff,
                    col(UploadJob.state).in_(terminal),
                    ~_still_needed(col(UploadJob.storage_key), cutoff=cutoff),
                )
                .distinct()
                .limit(limit)
            )
        )
    deleted = 0
    for key in keys:
        with session_scope(engine) as session:
            needed = _locked_key_users(
                session, key, _still_needed(col(UploadJob.storage_key), cutoff=cutoff)
            )
            if needed:
                continue  # a producer committed a job for these bytes since the scan
            if delete(key):
                deleted += 1
            session.execute(
                update(UploadJob)
                .where(
                    col(UploadJob.storage_key) == key,
                    col(UploadJob.document_deleted_at).is_(None),
                )
                .values(document_deleted_at=now)
            )
    return deleted


# -- what the scheduling rules read ------------------------------------------------------------


def count_jobs(
    engine: Engine, state: JobState, *, priority_below: Priority | int | None = None
) -> int:
    """Jobs in `state`; with `priority_below`, only those that run before that priority."""
    statement = (
        select(func.count()).select_from(UploadJob).where(col(UploadJob.state) == state.value)
    )
    if priority_below is not None:
        statement = statement.where(col(UploadJob.priority) < int(priority_below))
    with Session(engine) as session:
        return int(session.exec(statement).one())


def count_created_since(
    engine: Engine, since: datetime, *, priority_below: Priority | int | None = None
) -> int:
    """Jobs created since `since` (whatever their state now); with `priority_below`, only
    those of a more urgent priority."""
    statement = (
        select(func.count()).select_from(UploadJob).where(col(UploadJob.created_at) >= since)
    )
    if priority_below is not None:
        statement = statement.where(col(UploadJob.priority) < int(priority_below))
    with Session(engine) as session:
        return int(session.exec(statement).one())


def counts_by_state(engine: Engine) -> dict[str, int]:
    """How many jobs stand in each state, every state named (zero included)."""
    with Session(engine) as session:
        rows = session.exec(
            select(col(UploadJob.state), func.count()).group_by(col(UploadJob.state))
        ).all()
    counts = {state.value: 0 for state in JobState}
    counts.update({state: int(count) for state, count in rows})
    return counts


@dataclass(frozen=True)
class CompletedTicket:
    """When a delivered ticket was uploaded, last seen in progress, and seen complete."""

    uploaded_at: datetime
    last_in_progress_at: datetime | None
    finished_at: datetime


def recent_completed_tickets(
    engine: Engine, tenant_id: str | None, *, limit: int
) -> list[CompletedTicket]:
    """The tenant's (None: the whole fleet's) last `limit` delivered tickets, newest first."""
    statement = (
        select(
            col(UploadJob.uploaded_at),
            col(UploadJob.finished_at),
            col(UploadJob.last_in_progress_at),
        )
        .where(
            col(UploadJob.state) == JobState.COMPLETE.value,
            col(UploadJob.uploaded_at).is_not(None),
            col(UploadJob.finished_at).is_not(None),
        )
        .order_by(col(UploadJob.finished_at).desc())
        .limit(limit)
    )
    if tenant_id is not None:
        statement = statement.where(col(UploadJob.tenant_id) == tenant_id)
    with Session(engine) as session:
        rows = session.exec(statement).all()
    return [
        CompletedTicket(uploaded_at, still_at, finished_at)
        for uploaded_at, finished_at, still_at in rows
        if uploaded_at is not None and finished_at is not None
    ]


@dataclass(frozen=True)
class WaitingWork:
    """Unfinished jobs of one tenant in one class of work, and since when the oldest waits."""

    tenant_id: str
    state: JobState
    priority: int
    retry: bool
    count: int
    oldest_job_id: str
    oldest_since: datetime


def waiting_work(engine: Engine) -> list[WaitingWork]:
    """The backlog grouped by tenant, state (queued, uploading, polling), priority and whether
    it is a retry, each group with its oldest job: what `status --fleet` shows."""
    unfinished = [JobState.QUEUED.value, JobState.UPLOADING.value, JobState.POLLING.value]
    retry = col(UploadJob.attempts) > 0
    statement = (
        sa_select(
            col(UploadJob.tenant_id),
            col(UploadJob.state),
            col(UploadJob.priority),
            retry.label("retry"),
            func.count().label("count"),
            func.min(col(UploadJob.created_at)).label("oldest"),
        )
        .where(col(UploadJob.state).in_(unfinished))
        .group_by(col(UploadJob.tenant_id), col(UploadJob.state), col(UploadJob.priority), retry)
    )
    with Session(engine) as session:
        groups = session.execute(statement).all()
        found = []
        for group in groups:
            oldest_id = session.exec(
                select(UploadJob.id)
                .where(
                    col(UploadJob.tenant_id) == group.tenant_id,
                    col(UploadJob.state) == group.state,
                    col(UploadJob.priority) == group.priority,
                    retry if group.retry else ~retry,
                )
                .order_by(col(UploadJob.created_at))
                .limit(1)
            ).first()
            found.append(
                WaitingWork(
                    tenant_id=group.tenant_id,
                    state=JobState(group.state),
                    priority=int(group.priority),
                    retry=bool(group.retry),
                    count=int(group[4]),
                    oldest_job_id=oldest_id or "",
                    oldest_since=_aware(group.oldest),
                )
            )
    return found


def release_holds_until(engine: Engine, held_until: datetime, *, now: datetime, note: str) -> int:
    """Let the jobs that wait for exactly `held_until` (a refusal's end) go now; returns how
    many were released. Queued jobs wait in `not_before`, polling ones in `next_poll_at`."""
    released = 0
    with session_scope(engine) as session:
        held = session.exec(
            select(UploadJob).where(
                or_(
                    and_(
                        col(UploadJob.state) == JobState.QUEUED.value,
                        col(UploadJob.not_before) == held_until,
                    ),
                    and_(
                        col(UploadJob.state) == JobState.POLLING.value,
                        col(UploadJob.next_poll_at) == held_until,
                    ),
                )
            )
        ).all()
        for job in held:
            if job.job_state is JobState.QUEUED:
                job.not_before = now
            else:
                job.next_poll_at = now
            job.published_at = None
            record_note(session, job, reason=note, now=now)
            released += 1
    return released


# -- what the metrics read ----------------------------------------------------------------------

# Each step's outcome as its event records it: (step, outcome, from_state, to_state, the
# reason's shape or None). Notes (from_state == to_state) are told apart by the words the
# poll step writes (`worker.poll_step`); tests/unit/monitoring/test_collector.py runs the
# real steps, so a change of wording there fails here.
_DEFERRED = "no API call available%"
STEP_OUTCOMES: tuple[tuple[str, str, str, str, str | None], ...] = (
    ("upload", "uploaded", "uploading", "polling", None),
    ("upload", "failed", "uploading", "failed", None),
    ("upload", "deferred", "uploading", "queued", _DEFERRED),
    ("upload", "retried", "uploading", "queued", None),
    ("poll", "complete", "polling", "complete", None),
    ("poll", "failed", "polling", "failed", None),
    ("poll", "expired", "polling", "expired", None),
    ("poll", "in_progress", "polling", "polling", "ticket % still %"),
    ("poll", "check_failed", "polling", "polling", "status check %"),
    ("poll", "deferred", "polling", "polling", _DEFERRED),
)


def step_outcome_counts(engine: Engine) -> dict[tuple[str, str], int]:
    """How many upload and poll steps ended each way, over the whole history, by
    (step, outcome) as in `STEP_OUTCOMES` (every pair named, zero included)."""
    cases = []
    for step, outcome, from_state, to_state, shape in STEP_OUTCOMES:
        condition = and_(col(JobEvent.from_state) == from_state, col(JobEvent.to_state) == to_state)
        if shape is not None:
            condition = and_(condition, col(JobEvent.reason).like(shape))
        cases.append((condition, f"{step}:{outcome}"))
    kind = case(*cases, else_=None)
    moved = col(JobEvent.from_state).in_(["uploading", "polling"])
    with Session(engine) as session:
        rows = session.exec(select(kind, func.count()).where(moved).group_by(kind)).all()
    counts = {(step, outcome): 0 for step, outcome, *_ in STEP_OUTCOMES}
    for name, count in rows:
        if name is not None:
            step, _, outcome = str(name).partition(":")
            counts[(step, outcome)] = int(count)
    return counts


def counts_by_state_and_tenant(engine: Engine) -> dict[tuple[str, str], int]:
    """Jobs by (state, tenant): every state for each tenant that has a job, zero included."""
    with Session(engine) as session:
        rows = session.exec(
            select(col(UploadJob.state), col(UploadJob.tenant_id), func.count()).group_by(
                col(UploadJob.state), col(UploadJob.tenant_id)
            )
        ).all()
    tenants = {tenant for _, tenant, _ in rows}
    counts = {(state.value, tenant): 0 for state in JobState for tenant in tenants}
    counts.update({(state, tenant): int(count) for state, tenant, count in rows})
    return counts


UNFINISHED_STATES = (JobState.QUEUED, JobState.UPLOADING, JobState.POLLING)


def oldest_waiting_since(engine: Engine) -> dict[int, datetime]:
    """Per priority, since when the oldest undelivered job (queued, uploading or polling)
    has waited: since it was handed over, or since `yfdocs retry` last sent it again."""
    retried_at = (
        select(func.max(JobEvent.at))
        .where(
            col(JobEvent.job_id) == col(UploadJob.id),
            col(JobEvent.from_state).in_([JobState.FAILED.value, JobState.EXPIRED.value]),
            col(JobEvent.to_state) == JobState.QUEUED.value,
        )
        .correlate(UploadJob)
        .scalar_subquery()
    )
    since = func.coalesce(retried_at, col(UploadJob.created_at))
    with Session(engine) as session:
        rows = session.exec(
            select(col(UploadJob.priority), func.min(since))
            .where(col(UploadJob.state).in_([state.value for state in UNFINISHED_STATES]))
            .group_by(col(UploadJob.priority))
        ).all()
    return {int(priority): moment for priority, moment in rows if moment is not None}


@dataclass(frozen=True)
class DurationHistogram:
    """Cumulative counts of durations at or below each bound, with their count and sum."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    count: int
    total_seconds: float


def ticket_duration_histogram(engine: Engine, bounds: Sequence[float]) -> DurationHistogram:
    """How long delivered tickets took, from the upload to the poll that saw `Complete`,
    over every complete job, counted in the database (one query, no rows fetched)."""
    uploaded, finished = col(UploadJob.uploaded_at), col(UploadJob.finished_at)
    if engine.dialect.name == "sqlite":
        seconds: Any = (func.julianday(finished) - func.julianday(uploaded)) * 86400.0
    else:
        seconds = extract("epoch", finished - uploaded)
    columns: list[Any] = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in bounds]
    columns += [func.count(), func.coalesce(func.sum(seconds), 0.0)]
    with Session(engine) as session:
        row = session.exec(
            select(*columns).where(
                col(UploadJob.state) == JobState.COMPLETE.value,
                uploaded.is_not(None),
                finished.is_not(None),
            )
        ).one()
    *cumulative, count, total = row
    return DurationHistogram(
        tuple(bounds), tuple(int(n or 0) for n in cumulative), int(count), float(total or 0.0)
    )


# -- views -------------------------------------------------------------------------------------


def list_jobs(
    engine: Engine,
    *,
    state: JobState | None = None,
    limit: int = 50,
    tenants: Collection[str] | None = None,
    updated_since: datetime | None = None,
) -> list[UploadJob]:
    """The newest jobs first, optionally in one state, of some tenants, changed since."""
    statement = select(UploadJob)
    if state is not None:
        statement = statement.where(col(UploadJob.state) == state.value)
    if tenants is not None:
        statement = statement.where(col(UploadJob.tenant_id).in_(list(tenants)))
    if updated_since is not None:
        statement = statement.where(col(UploadJob.updated_at) >= updated_since)
    statement = statement.order_by(col(UploadJob.created_at).desc(), col(UploadJob.id)).limit(limit)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(statement).all())


def find_job(engine: Engine, id_or_prefix: str) -> UploadJob:
    """The job with this id, or the only one whose id starts with it."""
    text = id_or_prefix.strip().lower()
    if not text:
        raise JobNotFound("no job id given")
    with Session(engine, expire_on_commit=False) as session:
        job = session.get(UploadJob, text)
        if job is not None:
            return job
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = session.exec(
            select(UploadJob).where(col(UploadJob.id).like(f"{escaped}%", escape="\\")).limit(2)
        ).all()
    if not matches:
        raise JobNotFound(f"no job with id {id_or_prefix!r}")
    if len(matches) > 1:
        raise AmbiguousJobId(f"job id prefix {id_or_prefix!r} fits more than one job")
    return matches[0]


def job_events(engine: Engine, job_id: str) -> list[JobEvent]:
    """A job's history, oldest first."""
    with Session(engine, expire_on_commit=False) as session:
        return list(
            session.exec(
                select(JobEvent)
                .where(col(JobEvent.job_id) == job_id)
                .order_by(col(JobEvent.at), col(JobEvent.id))
            ).all()
        )


def jobs_by_ids(engine: Engine, job_ids: Sequence[str]) -> dict[str, UploadJob]:
    """These jobs by id (missing ones left out)."""
    with Session(engine, expire_on_commit=False) as session:
        rows = session.exec(select(UploadJob).where(col(UploadJob.id).in_(list(job_ids))))
        return {job.id: job for job in rows}


# -- learner mapping ---------------------------------------------------------------------------


def unmatched_jobs(
    engine: Engine, tenant_id: str, *, limit: int, after: UploadJob | None = None
) -> list[UploadJob]:
    """The tenant's jobs waiting for their learner to be known, oldest first; with `after`,
    those that come after that job (the next batch)."""
    statement = select(UploadJob).where(
        col(UploadJob.state) == JobState.UNMATCHED.value, col(UploadJob.tenant_id) == tenant_id
    )
    if after is not None:
        statement = statement.where(
            or_(
                col(UploadJob.created_at) > after.created_at,
                and_(col(UploadJob.created_at) == after.created_at, col(UploadJob.id) > after.id),
            )
        )
    statement = statement.order_by(col(UploadJob.created_at), col(UploadJob.id)).limit(limit)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(statement).all())


def tenants_with_unmatched_jobs(engine: Engine) -> set[str]:
    """Every tenant that has a job waiting for its learner."""
    with Session(engine) as session:
        return set(
            session.exec(
                select(UploadJob.tenant_id)
                .where(col(UploadJob.state) == JobState.UNMATCHED.value)
                .distinct()
            ).all()
        )


def match_unmatched_job(
    engine: Engine, job_id: str, person_code: str, *, reason: str, now: datetime
) -> UploadJob | None:
    """Give a waiting job its personCode and queue it (with its event); None when the job
    is no longer unmatched (another sync matched it first)."""
    with locked_job(engine, job_id) as (session, job):
        if job is None or job.job_state is not JobState.UNMATCHED:
            return None
        job.person_code = person_code
        job.published_at = None
        change_state(session, job, JobState.QUEUED, reason=reason, now=now)
        return job


def note_unmatched_reason(engine: Engine, job_id: str, reason: str, *, now: datetime) -> bool:
    """Record a new reason why a job still waits (e.g. now two persons share its address);
    False, and nothing written, when the reason is unchanged or the job moved on."""
    with locked_job(engine, job_id) as (session, job):
        if job is None or job.job_state is not JobState.UNMATCHED or job.last_error == reason:
            return False
        record_note(session, job, reason=reason, error=reason, now=now)
        return True
