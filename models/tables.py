"""The tables: upload jobs, their audit trail, the fleet's token cache, API call ledger, the
rate governor's slots and pacing state, stored PDFs and the fleet's choice of document store,
the workers' heartbeats, the HTTP intake's callers, and the persons that learner mapping
reads.

The database is the record. A Celery message carries only a job id; everything a worker
needs, and everything an operator asks months later, is here.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlmodel import Field, SQLModel

from models.states import JobState, Priority
from models.types import UTCDateTime, utcnow

__all__ = [
    "ApiCall",
    "DispatcherLease",
    "DocumentBlob",
    "DocumentStoreState",
    "GovernorSlot",
    "GovernorState",
    "IntakeKey",
    "JobEvent",
    "Person",
    "PersonEmail",
    "PersonSync",
    "TokenCacheEntry",
    "TokenGrant",
    "UploadJob",
    "WorkerHeartbeat",
    "new_job_id",
]


def new_job_id() -> str:
    return str(uuid.uuid4())


class UploadJob(SQLModel, table=True):
    """One document to deliver to one person's personnel file, and where it stands."""

    __tablename__ = "upload_jobs"
    __table_args__ = (
        Index("ix_upload_jobs_state_next_poll_at", "state", "next_poll_at"),
        Index("ix_upload_jobs_state_lease_expires_at", "state", "lease_expires_at"),
        Index("ix_upload_jobs_state_published_at", "state", "published_at"),
        Index("ix_upload_jobs_state_created_at", "state", "created_at"),
        Index("ix_upload_jobs_retention", "document_deleted_at", "finished_at"),
        Index("ix_upload_jobs_tenant_person", "tenant_id", "person_code"),
        Index("ix_upload_jobs_tenant_state_finished_at", "tenant_id", "state", "finished_at"),
        Index("ix_upload_jobs_storage_key", "storage_key"),
    )

    id: str = Field(default_factory=new_job_id, primary_key=True, max_length=36)
    tenant_id: str = Field(max_length=64)
    person_code: str = Field(max_length=64)
    document_type: str = Field(max_length=32)
    description: str = Field(max_length=500)
    valid_from: date | None = None
    file_name: str = Field(max_length=255)
    original_file_name: str = Field(max_length=1024)
    size_bytes: int
    sha256: str = Field(max_length=64)
    storage_key: str = Field(max_length=255)
    source: str = Field(default="cli", max_length=32)
    # How an LMS named the learner when it did not know the personCode: kept so that an
    # `unmatched` job (person_code still empty) can be matched again after a persons sync.
    learner_email: str | None = Field(default=None, max_length=320)
    learner_employee_number: str | None = Field(default=None, max_length=64)
    priority: int = Field(default=int(Priority.LIVE))
    idempotency_key: str = Field(max_length=255, unique=True)

    state: str = Field(default=JobState.QUEUED.value, max_length=16)
    attempts: int = 0
    poll_count: int = 0
    # Attempts whose upload may have reached Youforce without a ticket coming back.
    uncertain_deliveries: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    ticket_id: str | None = Field(default=None, max_length=64, index=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_http_status: int | None = None
    last_correlation_id: str | None = Field(default=None, max_length=128)

    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    uploaded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    not_before: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_poll_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_in_progress_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    document_deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def job_state(self) -> JobState:
        return JobState(self.state)


class JobEvent(SQLModel, table=True):
    """One line of a job's history: a change of state, or a note on the way (a retry)."""

    __tablename__ = "job_events"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(
        sa_column=Column(
            String(36), ForeignKey("upload_jobs.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    attempt: int = 0
    http_status: int | None = None
    correlation_id: str | None = Field(default=None, max_length=128)


class TokenCacheEntry(SQLModel, table=True):
    """The fleet's one access token per (token URL, client, tenant), and who is fetching it.

    `fetching_until` is a short lease: one process fetches while the others wait for it,
    so a fleet of workers makes one token request, not one each. The `refused_*` columns
    remember that the token endpoint refused the credentials (by fingerprint, never the
    secret), so the fleet does not ask again with them before `refused_until`.
    """

    __tablename__ = "token_cache"

    cache_key: str = Field(primary_key=True, max_length=255)
    access_token: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    token_type: str | None = Field(default=None, max_length=32)
    scope: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    fetched_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    fetching_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    fetcher: str | None = Field(default=None, max_length=128)
    refused_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    refused_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    refused_reason: str | None = Field(default=None, max_length=255)
    refused_credentials: str | None = Field(default=None, max_length=64)
    refusals: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )


class ApiCall(SQLModel, table=True):
    """The ledger of calls made to Youforce: the daily quota and token budget count these."""

    __tablename__ = "api_calls"
    __table_args__ = (
        Index("ix_api_calls_kind_at", "kind", "at"),
        Index("ix_api_calls_status_code_limit_name", "status_code", "limit_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
    kind: str = Field(max_length=16)
    tenant_id: str = Field(max_length=64)
    job_id: str | None = Field(default=None, max_length=36, index=True)
    status_code: int | None = None
    duration_ms: int | None = None
    # The limit a 429 named ("spike", "parallel", "quota"); None otherwise.
    limit_name: str | None = Field(default=None, max_length=16)


class GovernorSlot(SQLModel, table=True):
    """One of the fleet's parallel API call permits, held under a lease.

    The API allows a fixed number of calls in flight per app, across every process. A
    process takes a free (or lapsed) row for the length of one call; a process that dies
    holding one loses it when `lease_expires_at` passes, so a crash never leaks a permit.
    Rows are created on demand up to the configured concurrency; rows numbered above it
    (left by an earlier, larger setting) are ignored.
    """

    __tablename__ = "governor_slots"

    slot_no: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    holder: str | None = Field(default=None, max_length=128)
    acquired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class GovernorState(SQLModel, table=True):
    """The fleet's pacing state: one row (id 1), locked by whoever starts a call.

    `next_call_at` spaces the starts of calls by the minimum interval; `backoff_until`
    holds every process back after a 429, because the API's limits are per app, not per
    process. `spacing_extra` is what spike-arrest 429s taught the fleet to add to the
    interval (seconds, as of `spacing_raised_at`; it halves with time).
    """

    __tablename__ = "governor_state"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    next_call_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    backoff_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    backoff_reason: str | None = Field(default=None, max_length=255)
    spacing_extra: float = Field(
        default=0.0, sa_column=Column(Float, nullable=False, server_default=text("0"))
    )
    spacing_raised_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DocumentBlob(SQLModel, table=True):
    """A stored PDF in the shared database (the postgres document store), by storage key.

    Written whole in one transaction, so a reader never sees part of one; read in slices
    (`substr`), so no process holds more of it than a slice. The table exists on SQLite too
    (one schema everywhere) but only the postgres store writes it.
    """

    __tablename__ = "document_blobs"

    storage_key: str = Field(primary_key=True, max_length=255)
    size_bytes: int
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class DocumentStoreState(SQLModel, table=True):
    """Which document store the fleet uses: one row (id 1), once the database names one.

    Every process reads it, so that the fleet agrees on where PDFs are without every
    process's settings having to change at the same moment. `yfdocs documents move` writes
    it; while a move runs, `move_source` and `move_target` name both stores (the active one
    first receives new PDFs; readers and retention look in the other as well).
    """

    __tablename__ = "document_store_state"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    active: str = Field(max_length=1024)
    move_source: str | None = Field(default=None, max_length=1024)
    move_target: str | None = Field(default=None, max_length=1024)
    changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    reason: str = Field(sa_column=Column(Text, nullable=False))


class IntakeKey(SQLModel, table=True):
    """One LMS caller of the HTTP intake: its key, the tenants it may deliver to, and what
    its formats need (a webhook signing secret, a static secret header, fetch hosts, the
    Canvas root accounts whose signed events it takes).

    The key itself is never stored, only its SHA-256 (a key has 256 random bits, so a fast
    hash is as good as a slow one); `key_id` is its public first part, which finds the row.
    The static secret is stored as a digest too. The webhook secret is kept as given,
    because checking an HMAC needs it: this table is as sensitive as `token_cache`.
    """

    __tablename__ = "intake_keys"

    name: str = Field(primary_key=True, max_length=64)
    key_id: str = Field(max_length=32, unique=True)
    key_sha256: str = Field(max_length=64)
    tenants: str = Field(sa_column=Column(Text, nullable=False))  # a JSON list
    fetch_hosts: str = Field(sa_column=Column(Text, nullable=False))  # a JSON list
    # Canvas root accounts (`root_account_uuid`) whose signed events this caller takes.
    canvas_accounts: str = Field(sa_column=Column(Text, nullable=False))  # a JSON list
    webhook_secret: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    static_secret_sha256: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Person(SQLModel, table=True):
    """A person of one tenant as Youforce's `persons` reader last gave it: enough to turn
    the e-mail address or employee number an LMS knows into the personCode uploads need."""

    __tablename__ = "persons"
    __table_args__ = (Index("ix_persons_tenant_person_code", "tenant_id", "person_code"),)

    tenant_id: str = Field(primary_key=True, max_length=64)
    person_id: str = Field(primary_key=True, max_length=64)
    person_code: str = Field(max_length=64)
    changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    synced_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class PersonEmail(SQLModel, table=True):
    """One e-mail address of a person (Business, or Private where the scope gives it),
    lower-cased: the index learner mapping looks addresses up in."""

    __tablename__ = "person_emails"
    __table_args__ = (
        Index("ix_person_emails_tenant_address", "tenant_id", "address"),
        Index("ix_person_emails_tenant_person", "tenant_id", "person_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=64)
    person_id: str = Field(max_length=64)
    address: str = Field(max_length=320)
    kind: str = Field(max_length=32)


class PersonSync(SQLModel, table=True):
    """Where a tenant's persons sync stands: the next delta asks for changes after
    `changed_after` (None: a full read)."""

    __tablename__ = "person_syncs"

    tenant_id: str = Field(primary_key=True, max_length=64)
    changed_after: datetime | None = Field(default=None, sa_type=UTCDateTime)
    synced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TokenGrant(SQLModel, table=True):
    """The pacer's permission for one token request for a tenant: a delivery window to open.

    The dispatcher grants it when the token budget's pace allows and the tenant's work is
    the most urgent; the fleet's token cache fetches a token for a tenant only against an
    unused grant, and marks it used. An unused grant lapses at `grant_until`.
    """

    __tablename__ = "token_grants"

    tenant_id: str = Field(primary_key=True, max_length=64)
    granted_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    grant_until: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str = Field(default="", max_length=255)


class DispatcherLease(SQLModel, table=True):
    """Which process dispatches now: one row (id 1), held under a lease, so that exactly one
    dispatcher acts at a time in a deployment however many are started."""

    __tablename__ = "dispatcher_lease"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    holder: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The tenants' round-robin credit, carried from pass to pass (JSON; see
    # scheduling.policy.dispatch), so a handover between dispatchers keeps the fairness.
    fair_share: str | None = Field(default=None, sa_type=Text)


class WorkerHeartbeat(SQLModel, table=True):
    """When each worker (by Celery node name) was last seen consuming, for the fleet's metrics.

    A worker's main process writes its row every half minute while its consumer runs
    (`worker.heartbeats`), and `stopped_at` when it shuts down cleanly; a worker that
    vanished simply stops writing. Rows not seen for a day are deleted.
    """

    __tablename__ = "worker_heartbeats"

    hostname: str = Field(primary_key=True, max_length=255)
    pid: int | None = None
    started_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_seen_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
