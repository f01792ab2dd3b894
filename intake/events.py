"""One internal completion event for every LMS format, and the one way it becomes a job.

Each source's adapter (`intake.sources.*`) turns what its LMS sends into a
`CompletionEvent` (or an `Ignored`, for events that do not mean "done"); `accept_event`
then checks the caller's tenant, picks the PDF or the certificate URL, and hands the
result to the producer (`intake.producer.enqueue_document`), the same validation and
enqueue that the CLI uses. An event's key is scoped by the caller's name, so two LMSs that
number their events alike never meet, and one LMS's redelivery is always the same job.

Errors added here (both refusals, both `EnqueueRejected`):

    EnqueueRejected
    ├── MalformedDelivery     (a body not in its source's format: 400)
    └── ValidationError
        └── NoCertificate     (neither a PDF nor a certificate_url: 422)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from jwt import PyJWKClient
from sqlalchemy.engine import Engine

from api_client import DocumentType
from config import Settings
from intake.callers import IntakeCaller
from intake.certificate_fetch import CertificateDownload, CertificateFetcher
from intake.producer import EnqueueRequest, EnqueueResult, enqueue_document
from intake.storage import DocumentStore
from intake.stores import open_document_store
from intake.validation import (
    EnqueueRejected,
    InvalidIdempotencyKey,
    InvalidValidFrom,
    ValidationError,
)
from models import Priority

__all__ = [
    "CompletionEvent",
    "Ignored",
    "IntakeServices",
    "MalformedDelivery",
    "NoCertificate",
    "accept_event",
    "business_key",
    "completion_date",
    "text_at",
]

# The job's key is `caller:<tenant>:<caller name>/<event key>`: with a 64-character tenant
# and name, 110 keeps it within the column's 255.
MAX_EVENT_ID_LENGTH = 110


class MalformedDelivery(EnqueueRejected):
    """The body is not what its source sends (bad JSON, bad multipart, an xAPI attachment
    whose hash does not match or that is missing): answered 400."""


class NoCertificate(ValidationError):
    """The event carries no PDF and names no certificate URL."""


@dataclass(frozen=True)
class Ignored:
    """An event that is acknowledged and not enqueued (a verb or type that is not "done")."""

    reason: str


@dataclass(frozen=True)
class CompletionEvent:
    """A learner finished something and there is (or can be fetched) a certificate.

    `event_key` identifies the event within its source (`webhook:<id>`, `xapi:<id>`, a
    business key): it becomes the job's idempotency key, scoped by the caller. None (a
    document handed in without an event id) means the key derived from the content.
    """

    source: str
    event_key: str | None
    tenant_id: str | None = None
    person_code: str | None = None
    email: str | None = None
    employee_number: str | None = None
    document_type: str = DocumentType.CERTIFICATE.value
    description: str | None = None
    valid_from: str | date | None = None
    pdf: bytes | None = None
    certificate_url: str | None = None
    file_name: str | None = None
    course_name: str | None = None


@dataclass
class IntakeServices:
    """What the intake needs: the settings, the database, the store, the downloader. No
    publisher: an accepted job is a committed row, which the dispatcher publishes."""

    settings: Settings
    engine: Engine
    store: DocumentStore
    fetcher: CertificateFetcher
    canvas_keys: PyJWKClient | None = None

    @classmethod
    def build(cls, settings: Settings, engine: Engine) -> IntakeServices:
        canvas_keys = None
        if settings.canvas_jwks_url is not None:
            canvas_keys = PyJWKClient(
                settings.canvas_jwks_url, lifespan=3600, timeout=settings.intake_fetch_timeout
            )
        return cls(
            settings=settings,
            engine=engine,
            store=open_document_store(settings, engine),  # the fleet's store, as workers read it
            fetcher=CertificateFetcher(
                timeout=settings.intake_fetch_timeout, ca_bundle=settings.intake_fetch_ca_bundle
            ),
            canvas_keys=canvas_keys,
        )


def business_key(kind: str, *parts: str) -> str:
    """A short, stable key for an event that has no id of its own (user, course, time)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]
    return f"{kind}:{digest}"


def text_at(payload: Any, *path: str, field: str | None = None) -> str | None:
    """The text at `path` in a JSON object (numbers as their digits), None when absent or
    null; `MalformedDelivery` for anything else there, or for a step that is no object."""
    value = payload
    for depth, name in enumerate(path):
        if value is None:
            return None
        if not isinstance(value, Mapping):
            where = ".".join(path[:depth]) or "body"
            raise MalformedDelivery(field or where, f"{where} must be a JSON object")
        value = value.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedDelivery(field or ".".join(path), f"{'.'.join(path)} must be text")
    text = str(value).strip()
    return text or None


def completion_date(value: str | int | float | None, field: str) -> date | None:
    """The UTC date of a completion time: ISO 8601 (`2026-11-30T14:02:11Z`) or epoch seconds."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
            return datetime.fromtimestamp(float(value), tz=UTC).date()
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise InvalidValidFrom(field, f"{field} {value!r:.60} is not a date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


def _document(
    event: CompletionEvent, caller: IntakeCaller, services: IntakeServices
) -> bytes | CertificateDownload:
    if event.pdf is not None:
        return event.pdf
    if event.certificate_url is not None:
        return CertificateDownload(event.certificate_url, caller.fetch_hosts, services.fetcher)
    raise NoCertificate(
        "certificate_url", "the event carries no PDF and names no certificate_url to fetch"
    )


def accept_event(
    event: CompletionEvent, caller: IntakeCaller, services: IntakeServices
) -> EnqueueResult:
    """Enqueue the event for the caller (or return the job it already is)."""
    tenant_id = caller.tenant_for(event.tenant_id)
    if event.event_key is not None and len(event.event_key) > MAX_EVENT_ID_LENGTH:
        raise InvalidIdempotencyKey(
            "event_id", f"the event id is over {MAX_EVENT_ID_LENGTH} characters"
        )
    file_name = event.file_name or (f"{event.course_name}.pdf" if event.course_name else None)
    request = EnqueueRequest(
        document=_document(event, caller, services),
        person_code=event.person_code,
        learner_email=event.email,
        learner_employee_number=event.employee_number,
        document_type=event.document_type,
        description=event.description,
        valid_from=event.valid_from,
        tenant_id=tenant_id,
        idempotency_key=None if event.event_key is None else f"{caller.name}/{event.event_key}",
        file_name=file_name,
        priority=Priority.LIVE,
        source=event.source,
    )
    return enqueue_document(
        request,
        engine=services.engine,
        store=services.store,
        settings=services.settings,
    )
