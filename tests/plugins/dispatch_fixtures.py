"""Rows the dispatcher reads, written straight into a migrated database of either kind:
jobs in the shape a step leaves them, tenants' tokens (open delivery windows) and the
token requests already made this budget window.

`Fleet` bundles an engine, settings and a clock the test moves by hand.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from config import Settings
from models import ApiCall, JobState, Priority, TokenCacheEntry, UploadJob, session_scope
from models.tables import TokenGrant
from scheduling.ledger import TOKEN_KIND
from tests.fake_publisher import FakePublisher
from worker.dispatcher import DispatchReport, dispatch_once

__all__ = [
    "NOW",
    "TENANT",
    "TOKEN_URL",
    "Fleet",
    "add_job",
    "grants",
    "make_fleet",
    "open_window",
    "read_job",
    "spend_tokens",
    "token_key",
]

TENANT = "4028868"
TOKEN_URL = "https://connect.test/token"
# Ten days into March: the month's pace line stands at about 110 of 360 paced tokens.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

_keys = itertools.count()


def token_key(tenant: str) -> str:
    """A tenant's token cache key, as `api_client.token_cache_key` builds it."""
    return f"{TOKEN_URL}|client|{tenant}"


def add_job(
    engine: Engine,
    *,
    tenant: str = TENANT,
    state: JobState = JobState.QUEUED,
    priority: Priority = Priority.LIVE,
    created_at: datetime = NOW,
    **values: Any,
) -> str:
    """A job row as the producer and the steps leave it; `values` set any other column."""
    number = next(_keys)
    columns: dict[str, Any] = {
        "person_code": f"P{number}",
        "document_type": "certificate",
        "description": "Certificate",
        "file_name": "c.pdf",
        "original_file_name": "c.pdf",
        "size_bytes": 1,
        "sha256": "0" * 64,
        "storage_key": f"key-{number}",
        "idempotency_key": f"dispatch-test-{number}",
        "updated_at": created_at,
    }
    if state is JobState.POLLING:
        columns.update(
            ticket_id=f"tkt-{number}", uploaded_at=created_at, next_poll_at=created_at, attempts=1
        )
    columns.update(values)
    job = UploadJob(
        tenant_id=tenant,
        priority=int(priority),
        state=state.value,
        created_at=created_at,
        **columns,
    )
    with session_scope(engine) as session:
        session.add(job)
    return job.id


def read_job(engine: Engine, job_id: str) -> UploadJob:
    """The job row as it is now, detached from its session."""
    with Session(engine) as session:
        job = session.get(UploadJob, job_id)
        assert job is not None
        session.expunge(job)
        return job


def open_window(engine: Engine, tenant: str, *, expires_at: datetime) -> None:
    """The tenant holds a token valid until `expires_at` (an open window while it outlives
    the refresh margin)."""
    table = TokenCacheEntry.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(
            insert(table).values(
                cache_key=token_key(tenant),
                access_token="t0ken",  # a stand-in, never sent anywhere
                token_type="Bearer",
                expires_at=expires_at,
                fetched_at=expires_at - timedelta(hours=1),
            )
        )


def spend_tokens(engine: Engine, count: int, *, at: datetime, tenant: str = TENANT) -> None:
    """`count` token requests in the ledger at `at`."""
    table = ApiCall.__table__  # type: ignore[attr-defined]
    if count <= 0:
        return
    with engine.begin() as connection:
        connection.execute(
            insert(table),
            [{"at": at, "kind": TOKEN_KIND, "tenant_id": tenant, "status_code": 200}] * count,
        )


def grants(engine: Engine) -> dict[str, Any]:
    """The grant rows by tenant."""
    table = TokenGrant.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        return {row.tenant_id: row for row in connection.execute(select(table))}


@dataclass
class Fleet:
    """A database, the settings the dispatcher reads, a fake broker and a hand-moved clock."""

    engine: Engine
    settings: Settings
    publisher: FakePublisher = field(default_factory=FakePublisher)
    now: list[datetime] = field(default_factory=lambda: [NOW])

    @property
    def clock(self) -> Callable[[], datetime]:
        return lambda: self.now[0]

    def advance(self, seconds: float) -> datetime:
        self.now[0] += timedelta(seconds=seconds)
        return self.now[0]

    def dispatch(self, owner: str = "dispatcher:1") -> DispatchReport:
        return dispatch_once(
            self.engine, self.settings, self.publisher, owner=owner, clock=self.clock
        )

    def job(self, job_id: str) -> UploadJob:
        return read_job(self.engine, job_id)

    def claim(self, job_id: str) -> None:
        """What a worker does when it takes the message: the job is leased, unpublished."""
        with session_scope(self.engine) as session:
            job = session.get(UploadJob, job_id)
            assert job is not None
            if job.job_state is JobState.QUEUED:
                job.state = JobState.UPLOADING.value
            job.lease_owner = "worker:1"
            job.lease_expires_at = self.now[0] + timedelta(seconds=120)
            job.published_at = None

    def published_ids(self) -> list[str]:
        return [job_id for _, job_id in self.publisher.sent]

    def token_requests(self) -> int:
        table = ApiCall.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(table).where(table.c.kind == TOKEN_KIND)
                ).scalar_one()
            )


def make_fleet(engine: Engine, data_dir: Path, **settings: Any) -> Fleet:
    """A `Fleet` on an emptied, migrated engine; settings as `Settings` fields."""
    values: dict[str, Any] = {"tenant_id": TENANT, "max_concurrency": 2}
    values.update(settings)
    return Fleet(engine, Settings(data_dir=data_dir, _env_file=None, **values))  # type: ignore[call-arg]
