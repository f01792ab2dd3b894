"""The one way a document becomes a job: validate -> store -> insert -> commit.

Every producer (the CLI, the library, backfill, the HTTP intake, the demo) calls
`enqueue_document`, so every job obeys the same rules:

- nothing is stored or inserted for input that is refused (`EnqueueRejected`);
- the same document enqueued twice is one job, even when two producers race, and whatever
  key each gave: identical content (tenant, personCode, type, SHA-256) answers the job
  already there, and its history records the repeat; a key is unique in the database,
  and a key reused for other content is an `IdempotencyConflict`;
- the committed row is the whole of it. The dispatcher (`worker.dispatcher`) publishes the
  job when it can start, in the fleet's order of work (live before backfill, tenants
  sharing fairly), so a producer never needs the broker: it answers "accepted" whatever
  the broker's state, and a backfill of thousands never floods it;
- a request may name its learner by e-mail address or employee number instead of the
  personCode (`intake.learners`). Everything else is validated first; a learner who
  cannot be matched yet makes an `unmatched` job with its PDF and the reason, which is
  queued for the dispatcher after a persons sync finds the person (`intake.person_sync`).
  Until then its content is its tenant, learner (as given), type and SHA-256;
- a document may be fetched from a `certificate_url` (`DocumentSource`): validation
  reaches it last, after every cheaper check, and a request whose caller key already
  names a job is answered with that job without fetching anything.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from api_client import DocumentType
from config import Settings
from intake.learners import match_learner
from intake.storage import DocumentStore
from intake.validation import (
    EnqueueRejected,
    NoLearner,
    ValidationError,
    check_pdf,
    default_description,
    read_document,
    sanitise_file_name,
    validate_caller_key,
    validate_description,
    validate_document_type,
    validate_email,
    validate_employee_number,
    validate_person_code,
    validate_tenant_id,
    validate_valid_from,
)
from models import JobState, Priority, UploadJob, utcnow
from models import jobs as job_table

__all__ = [
    "SOURCES",
    "DocumentSource",
    "EnqueueRejected",
    "EnqueueRequest",
    "EnqueueResult",
    "IdempotencyConflict",
    "ValidatedDocument",
    "ValidationError",
    "derived_idempotency_key",
    "enqueue_document",
    "enqueue_validated",
    "retry_job",
    "validate_request",
]

log = logging.getLogger(__name__)

SOURCES = frozenset(
    {
        "cli",
        "library",
        "backfill",
        "intake",
        "demo",
        "standard-webhooks",
        "xapi",
        "canvas",
        "moodle",
    }
)
DEFAULT_FILE_NAME = "document.pdf"


class IdempotencyConflict(EnqueueRejected):
    """The idempotency key already names a job for another person, type or PDF."""

    def __init__(self, key: str, existing_job_id: str, differences: list[str]) -> None:
        super().__init__(
            "key",
            f"idempotency key {key!r} is already used by job {existing_job_id} "
            f"for a different {', '.join(differences)}",
        )
        self.key = key
        self.existing_job_id = existing_job_id
        self.differences = differences


@runtime_checkable
class DocumentSource(Protocol):
    """A PDF that is read only when validation reaches it: a certificate to download.

    `read` raises `EnqueueRejected` when the document is refused (a URL not allowed, too
    large) and a transient error of its own when it cannot be had right now.
    """

    @property
    def file_name(self) -> str:
        """The name the document goes by (the last part of its URL, say)."""
        ...

    def read(self, max_bytes: int) -> bytes:
        """The document's bytes, never more than `max_bytes` of them."""
        ...


@dataclass(frozen=True)
class EnqueueRequest:
    """What a producer hands in. `document` is the PDF's bytes, a path to it (a `str` keeps
    a trailing slash that `Path` would drop, so that `cert.pdf/` is refused), or a source
    to fetch.

    The learner is a `person_code`, or else a `learner_email` and/or
    `learner_employee_number` for learner mapping. `description` None means "derive one"
    (`<Type>: <file name>`); `tenant_id` None means the settings' tenant;
    `idempotency_key` None means the key derived from the content.
    """

    document: bytes | str | Path | DocumentSource
    person_code: str | None
    document_type: str | DocumentType
    description: str | None = None
    valid_from: str | date | None = None
    tenant_id: str | None = None
    idempotency_key: str | None = None
    file_name: str | None = None
    priority: Priority = Priority.LIVE
    source: str = "library"
    learner_email: str | None = None
    learner_employee_number: str | None = None


@dataclass(frozen=True)
class ValidatedDocument:
    """An accepted request: every value checked and normalised, the PDF's bytes in hand."""

    content: bytes
    sha256: str
    size_bytes: int
    tenant_id: str
    person_code: str | None  # None: the learner is to be matched
    learner_email: str | None
    learner_employee_number: str | None
    document_type: DocumentType
    description: str
    valid_from: date | None
    file_name: str
    original_file_name: str
    idempotency_key: str
    caller_key: str | None
    priority: Priority
    source: str


@dataclass(frozen=True)
class EnqueueResult:
    """The job, and whether this call created it (False: it was already there)."""

    job: UploadJob
    created: bool


def derived_idempotency_key(
    tenant_id: str, person_code: str, document_type: DocumentType, sha256: str
) -> str:
    """The key of "this PDF, for this person, in this folder": enqueuing it again is a no-op."""
    material = "\x1f".join((tenant_id, person_code, document_type.value, sha256))
    return "derived:" + hashlib.sha256(material.encode("utf-8")).hexdigest()


def _caller_key(tenant_id: str, key: str) -> str:
    # Two tenants' LMSs may number their events alike; a key is unique within its tenant.
    return f"caller:{tenant_id}:{key}"


def _learner(request: EnqueueRequest) -> tuple[str | None, str | None, str | None]:
    """(personCode, e-mail, employee number), each checked. A personCode is used as given;
    the e-mail and employee number are then kept for the record, never matched."""
    email = None if request.learner_email is None else validate_email(request.learner_email)
    number = (
        None
        if request.learner_employee_number is None
        else validate_employee_number(request.learner_employee_number)
    )
    if request.person_code is not None:
        return validate_person_code(request.person_code), email, number
    if email is None and number is None:
        raise NoLearner(
            "person_code", "no learner: give a personCode, an e-mail address or an employee number"
        )
    return None, email, number


def _learner_identity(document: ValidatedDocument) -> str:
    """What names the learner in a derived key: the personCode, else the mapping's input."""
    if document.person_code is not None:
        return document.person_code
    return f"learner:{document.learner_email or ''}:{document.learner_employee_number or ''}"


def validate_request(request: EnqueueRequest, settings: Settings) -> ValidatedDocument:
    """Check everything, cheapest first, and raise the first `EnqueueRejected` found."""
    if request.source not in SOURCES:
        raise ValueError(f"unknown source {request.source!r}; one of {sorted(SOURCES)}")
    tenant_id = validate_tenant_id(
        request.tenant_id if request.tenant_id is not None else settings.tenant_id
    )
    person_code, learner_email, learner_employee_number = _learner(request)
    document_type = validate_document_type(request.document_type)
    valid_from = validate_valid_from(request.valid_from)
    caller_key = (
        validate_caller_key(request.idempotency_key)
        if request.idempotency_key is not None
        else None
    )
    if isinstance(request.document, bytes):
        given_name = request.file_name or DEFAULT_FILE_NAME
    elif isinstance(request.document, DocumentSource):
        given_name = request.file_name or request.document.file_name
    else:
        given_name = request.file_name or os.path.basename(os.fspath(request.document))
    name = sanitise_file_name(given_name)
    description = validate_description(
        request.description
        if request.description is not None
        else default_description(document_type, name.file_name)
    )
    if isinstance(request.document, bytes):
        content = request.document
    elif isinstance(request.document, DocumentSource):
        content = request.document.read(settings.max_file_bytes)
    else:
        content = read_document(request.document, settings.max_file_bytes)
    facts = check_pdf(
        content,
        settings.max_file_bytes,
        refuse_active_content=settings.pdf_active_content == "refuse",
    )
    document = ValidatedDocument(
        content=content,
        sha256=facts.sha256,
        size_bytes=facts.size_bytes,
        tenant_id=tenant_id,
        person_code=person_code,
        learner_email=learner_email,
        learner_employee_number=learner_employee_number,
        document_type=document_type,
        description=description,
        valid_from=valid_from,
        file_name=name.file_name,
        original_file_name=name.original_file_name,
        idempotency_key="",
        caller_key=caller_key,
        priority=Priority(request.priority),
        source=request.source,
    )
    key = (
        _caller_key(tenant_id, caller_key)
        if caller_key is not None
        else derived_idempotency_key(
            tenant_id, _learner_identity(document), document_type, facts.sha256
        )
    )
    return replace(document, idempotency_key=key)


def _differences(job: UploadJob, document: ValidatedDocument) -> list[str]:
    differences = []
    if job.tenant_id != document.tenant_id:
        differences.append("tenant")
    if document.person_code is not None and job.person_code != document.person_code:
        differences.append("personCode")
    if document.person_code is None and (
        (job.learner_email, job.learner_employee_number)
        != (document.learner_email, document.learner_employee_number)
    ):
        differences.append("learner")
    if job.document_type != document.document_type.value:
        differences.append("document type")
    if job.sha256 != document.sha256:
        differences.append("PDF")
    return differences


def _existing(engine: Engine, document: ValidatedDocument) -> UploadJob | None:
    """The job already holding this key, if it is the same document; else a conflict."""
    job = job_table.find_by_idempotency_key(engine, document.idempotency_key)
    if job is None:
        return None
    differences = _differences(job, document)
    if differences:
        shown_key = document.caller_key or document.idempotency_key
        raise IdempotencyConflict(shown_key, job.id, differences)
    return job


def _already_fetched(
    engine: Engine, request: EnqueueRequest, settings: Settings
) -> UploadJob | None:
    """For a document still to be fetched: the job its caller key already names, if any.

    A redelivered event is answered without downloading its certificate again; its key
    and tenant are checked as validation would check them.
    """
    if request.idempotency_key is None or not isinstance(request.document, DocumentSource):
        return None
    tenant_id = validate_tenant_id(
        request.tenant_id if request.tenant_id is not None else settings.tenant_id
    )
    key = _caller_key(tenant_id, validate_caller_key(request.idempotency_key))
    return job_table.find_by_idempotency_key(engine, key)


def _unmatched_learner(
    document: ValidatedDocument, person_code: str | None
) -> tuple[str | None, str | None] | None:
    """For a job whose learner is not matched yet: the learner as the event named them,
    which stands in for the personCode in its content (two learners nobody knows yet are
    not one person). None once there is a personCode."""
    if person_code is not None:
        return None
    return (document.learner_email, document.learner_employee_number)


def _key_words(document: ValidatedDocument) -> str:
    if document.caller_key is None:
        return "without a key"
    return f"with key {document.caller_key}"


def enqueue_document(
    request: EnqueueRequest,
    *,
    engine: Engine,
    store: DocumentStore,
    settings: Settings,
) -> EnqueueResult:
    """Turn a request into a queued (or `unmatched`) job, or return the job it already is.

    Raises `EnqueueRejected` (with nothing stored) for refused input, including
    `IdempotencyConflict`. Needs no broker: the dispatcher publishes the job.
    """
    fetched_before = _already_fetched(engine, request, settings)
    if fetched_before is not None:
        return EnqueueResult(job=fetched_before, created=False)
    return enqueue_validated(validate_request(request, settings), engine=engine, store=store)


def enqueue_validated(
    document: ValidatedDocument,
    *,
    engine: Engine,
    store: DocumentStore,
) -> EnqueueResult:
    """`enqueue_document` for a request already validated: a caller that must refuse bad
    input before it opens anything (the CLI creates no data dir for it) validates first."""
    existing = _existing(engine, document)
    if existing is not None:
        return EnqueueResult(job=existing, created=False)

    person_code, unmatched_reason = document.person_code, None
    if person_code is None:
        match = match_learner(
            engine,
            document.tenant_id,
            email=document.learner_email,
            employee_number=document.learner_employee_number,
        )
        person_code, unmatched_reason = match.person_code, match.reason

    # A repeat under another key needs no copy of the bytes: theirs may be gone already
    # (retention deletes them after a finished job), and a copy no job owns would stay.
    repeat = job_table.find_same_content(
        engine,
        tenant_id=document.tenant_id,
        person_code=person_code or "",
        document_type=document.document_type.value,
        sha256=document.sha256,
        learner=_unmatched_learner(document, person_code),
    )
    storage_key = repeat.storage_key if repeat is not None else store.put(document.content)
    now = utcnow()
    job = UploadJob(
        tenant_id=document.tenant_id,
        person_code=person_code or "",
        learner_email=document.learner_email,
        learner_employee_number=document.learner_employee_number,
        document_type=document.document_type.value,
        description=document.description,
        valid_from=document.valid_from,
        file_name=document.file_name,
        original_file_name=document.original_file_name,
        size_bytes=document.size_bytes,
        sha256=document.sha256,
        storage_key=storage_key,
        source=document.source,
        priority=int(document.priority),
        idempotency_key=document.idempotency_key,
        state=(JobState.QUEUED if unmatched_reason is None else JobState.UNMATCHED).value,
        last_error=unmatched_reason,
        created_at=now,
        updated_at=now,
    )
    reason = f"enqueued by {document.source}"
    if unmatched_reason is not None:
        reason += f"; unmatched: {unmatched_reason}"
    try:
        job, created = job_table.insert_job_unless_same_content(
            engine,
            job,
            reason=reason,
            again=f"enqueued again by {document.source} {_key_words(document)}: same document",
            now=now,
        )
    except IntegrityError:
        # Another producer inserted this key, for other content, between our look-up and
        # our insert: the look-up again finds the conflict.
        winner = _existing(engine, document)
        if winner is None:
            raise
        return EnqueueResult(job=winner, created=False)
    if not created:
        return EnqueueResult(job=job, created=False)
    if not store.exists(storage_key):
        # Retention removed a file with these bytes between our put and our commit (it
        # could not yet see this job), or a move switched the fleet's store after our put
        # and before its last copy pass could see this job. Now that the row exists,
        # retention keeps the bytes and a move copies them: put them where they belong.
        store.put(document.content)

    return EnqueueResult(job=job, created=True)


def retry_job(engine: Engine, job_id: str, *, now: datetime, reason: str) -> UploadJob:
    """Queue a failed or expired job again from the start (`yfdocs retry`; the dispatcher
    sends it); raises `models.jobs.JobNotRetryable` for any other job."""
    return job_table.requeue_finished_job(engine, job_id, reason=reason, now=now)
