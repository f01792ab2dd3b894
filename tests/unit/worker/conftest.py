"""A `WorkerRuntime` for unit tests: real SQLite and document store, fake API and broker.

The API client and the publisher are the only fakes: the client plays back scripted
answers (or raises real `api_client` errors), the publisher records what the dispatcher
asked it to send (or refuses like a dead broker). Time is a list cell the test moves by
hand. The steps never publish: `Harness.dispatch` runs the dispatcher's pass that does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api_client import CredentialsRejectedError, DocumentType, TicketStatus, UploadReceipt
from config import Settings
from intake.producer import EnqueueRequest, enqueue_document
from intake.storage import FilesystemDocumentStore
from models import JobEvent, Priority, UploadJob, make_engine, migrate
from scheduling import call_context
from scheduling.deferrals import CallDeferred
from scheduling.ledger import record_call
from scheduling.policy.poll_plan import PollPlan
from scheduling.policy.retry import PollSchedule, RetryPolicy
from scheduling.poll_planner import PollPlanner
from tests.fake_publisher import FakePublisher
from tests.pdf_samples import make_pdf
from tests.plugins.dispatch_fixtures import read_job
from worker.dispatcher import DispatchReport, dispatch_once
from worker.runtime import WorkerRuntime

TENANT = "4028868"
OWNER = "unit-host:1"
DISPATCHER = "unit-dispatcher:1"
# Just after the real "now": the producer stamps `created_at` with the real clock.
START = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)

Answer = Any  # a value to return, an exception to raise, or a callable to call


@dataclass
class UploadCall:
    tenant_id: str
    person_code: str
    document_type: DocumentType
    content: bytes
    description: str
    valid_from: date | None
    filename: str | None


class NotGranted:
    """An answer that raises its exception before the call was let go: as if the process
    stopped while it waited for a call slot, so the ledger holds no call for the job."""

    def __init__(self, exception: BaseException) -> None:
        self.exception = exception


@dataclass
class FakeClient:
    """Plays back scripted answers in order; fails the test when asked more than scripted.

    Like the real client behind the fleet's governor, it writes each call it lets go into
    the ledger, with the job the step runner names (so the history can tell whether an
    upload call had started).
    """

    upload_answers: list[Answer] = field(default_factory=list)
    status_answers: list[Answer] = field(default_factory=list)
    upload_calls: list[UploadCall] = field(default_factory=list)
    status_calls: list[tuple[str, str]] = field(default_factory=list)
    engine: Engine | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def _grant(self, kind: str, tenant_id: str, answer: Answer) -> None:
        """Write the call into the ledger, as the governor does when it grants a slot."""
        if isinstance(answer, NotGranted):
            raise answer.exception
        if self.engine is None or isinstance(answer, CallDeferred | CredentialsRejectedError):
            return  # refused by the governor, or by the token endpoint before this call
        with self.engine.begin() as connection:
            record_call(
                connection,
                at=self.clock(),
                kind=kind,
                tenant_id=tenant_id,
                job_id=call_context.current().job_id,
            )

    def upload_document(
        self,
        tenant_id: str,
        person_code: str,
        document_type: DocumentType | str,
        pdf: Path | str | BinaryIO,
        *,
        description: str,
        valid_from: date | None = None,
        filename: str | None = None,
        size: int | None = None,
    ) -> UploadReceipt:
        content = Path(pdf).read_bytes() if isinstance(pdf, Path | str) else pdf.read()
        assert size is None or size == len(content), "the size the job records is what is sent"
        self.upload_calls.append(
            UploadCall(
                tenant_id,
                person_code,
                DocumentType(document_type),
                content,
                description,
                valid_from,
                filename,
            )
        )
        if not self.upload_answers:
            raise AssertionError("unexpected upload_document call")
        answer = self.upload_answers.pop(0)
        self._grant("upload", tenant_id, answer)
        return cast(UploadReceipt, _play(answer))

    def ticket_status(self, tenant_id: str, ticket_id: str) -> TicketStatus:
        self.status_calls.append((tenant_id, ticket_id))
        if not self.status_answers:
            raise AssertionError("unexpected ticket_status call")
        answer = self.status_answers.pop(0)
        self._grant("status", tenant_id, answer)
        return cast(TicketStatus, _play(answer))


def _play(answer: Answer) -> Any:
    if isinstance(answer, BaseException):
        raise answer
    if callable(answer):
        return answer()
    return answer


def receipt(ticket_id: str = "tkt-0001", correlation_id: str | None = "corr-up-1") -> UploadReceipt:
    return UploadReceipt(
        ticket_id=ticket_id,
        description="Certificate: test.pdf",
        size=1234,
        tenant_id=TENANT,
        created_at_raw="2025-03-10T09:00:00Z",
        status=TicketStatus.from_api("InProgress"),
        correlation_id=correlation_id,
    )


def status(name: str, messages: list[str] | None = None) -> TicketStatus:
    return TicketStatus.from_api(name, messages)


@dataclass
class Harness:
    """The runtime and its fakes, plus helpers to make and read jobs."""

    rt: WorkerRuntime
    client: FakeClient
    publisher: FakePublisher
    now: list[datetime]
    _pdf_counter: int = 0

    @property
    def engine(self) -> Engine:
        return self.rt.engine

    @property
    def store(self) -> FilesystemDocumentStore:
        return self.rt.store

    def advance(self, seconds: float) -> datetime:
        self.now[0] += timedelta(seconds=seconds)
        return self.now[0]

    def enqueue(
        self,
        *,
        priority: Priority = Priority.LIVE,
        content: bytes | None = None,
        person_code: str = "10001",
        key: str | None = None,
    ) -> str:
        """A queued job made by the real producer (committed, not published)."""
        if content is None:
            self._pdf_counter += 1
            content = make_pdf(text=f"unit worker document {self._pdf_counter}")
        result = enqueue_document(
            EnqueueRequest(
                document=content,
                person_code=person_code,
                document_type=DocumentType.CERTIFICATE,
                file_name="test.pdf",
                priority=priority,
                idempotency_key=key,
            ),
            engine=self.engine,
            store=self.store,
            settings=self.rt.settings,
        )
        assert result.created
        return result.job.id

    def dispatch(self) -> DispatchReport:
        """One dispatcher pass at the harness's time, publishing to the fake broker."""
        return dispatch_once(
            self.engine,
            self.rt.settings,
            self.publisher,
            owner=DISPATCHER,
            clock=lambda: self.now[0],
        )

    def assert_dispatched_when_due(self, kind: str, job_id: str, due_at: datetime) -> None:
        """The job's next step (`kind`: upload or poll) waits in the database, unpublished,
        until `due_at`; a dispatcher pass then publishes it, once and with no countdown.
        Leaves the clock at `due_at` and the publisher's record empty."""
        assert self.job(job_id).published_at is None
        self.publisher.clear()
        assert due_at >= self.now[0], "the clock only moves forward"
        early = due_at - timedelta(seconds=1)
        if early >= self.now[0]:
            self.now[0] = early
            self.dispatch()
            assert self.publisher.sent == [], f"{kind} published a second before it was due"
        self.now[0] = due_at
        self.dispatch()
        assert self.publisher.sent == [(kind, job_id)]
        assert self.job(job_id).published_at == due_at
        self.dispatch()
        assert self.publisher.sent == [(kind, job_id)], "published twice"
        self.publisher.clear()

    def job(self, job_id: str) -> UploadJob:
        return read_job(self.engine, job_id)

    def events(self, job_id: str) -> list[JobEvent]:
        with Session(self.engine) as session:
            rows = list(
                session.exec(
                    select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))
                )
            )
            for row in rows:
                session.expunge(row)
            return rows

    def update(self, job_id: str, **values: Any) -> None:
        """Put a job into a shape that a test needs (a stand-in for another process)."""
        with Session(self.engine) as session:
            job = session.get(UploadJob, job_id)
            assert job is not None
            for name, value in values.items():
                setattr(job, name, value)
            session.add(job)
            session.commit()

    def polling_job(self, ticket_id: str = "tkt-0001", **values: Any) -> str:
        """A job that was uploaded at `now` and waits for its first poll."""
        job_id = self.enqueue()
        self.client.upload_answers.append(receipt(ticket_id))
        from worker.upload_step import upload_job

        outcome = upload_job(self.rt, job_id)
        assert outcome.action.startswith("uploaded"), outcome
        if values:
            self.update(job_id, **values)
        return job_id


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=data_dir, tenant_id=TENANT, _env_file=None, **overrides)


@pytest.fixture(autouse=True)
def _no_yfdocs_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings under test are the ones a test passes, not the developer's shell."""
    import os

    for name in list(os.environ):
        if name.startswith("YFDOCS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    engines: list[Engine] = []

    def build(
        *,
        retry_policy: RetryPolicy | None = None,
        poll_schedule: PollSchedule | None = None,
        **settings_overrides: Any,
    ) -> Harness:
        data_dir = tmp_path / f"data{len(engines)}"
        settings = make_settings(data_dir, **settings_overrides)
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
        engines.append(engine)
        now = [START]
        client = FakeClient(engine=engine, clock=lambda: now[0])
        publisher = FakePublisher()
        rt = WorkerRuntime(
            settings=settings,
            engine=engine,
            client=client,  # type: ignore[arg-type]  # the fake speaks the same two calls
            publisher=publisher,
            store=FilesystemDocumentStore(settings.storage_dir),
            owner=OWNER,
            clock=lambda: now[0],
            # No jitter: every delay below is exact (the jitter has its own tests).
            retry_policy=retry_policy
            or RetryPolicy(base_delay=2.0, multiplier=2.0, max_delay=600.0, jitter=0.0),
            # Cold start (nothing learned yet): the planner follows this schedule exactly.
            poll_planner=PollPlanner(
                engine,
                first_delay=30.0,
                max_delay=900.0,
                clock=lambda: now[0],
                plan=PollPlan(
                    fallback=poll_schedule
                    or PollSchedule(first_delay=30.0, multiplier=2.0, max_delay=900.0)
                ),
            ),
        )
        return Harness(rt=rt, client=client, publisher=publisher, now=now)

    yield build
    for engine in engines:
        engine.dispose()


@pytest.fixture
def h(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()
