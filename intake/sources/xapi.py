"""xAPI statements, as an LRS receives them (`POST .../statements`), with attachments.

The request is `application/json` (a statement or a list of them) or, with attachments,
`multipart/mixed` as xAPI-Communication §1.5.2 defines it: the first part is
`application/json` with the statement(s); each attachment follows as a part of its own with
`X-Experience-API-Hash` (the hex SHA-256 of its bytes, the attachment's `sha2`) and
`Content-Transfer-Encoding: binary`. A part whose bytes do not match its hash, or a
certificate attachment with no part (and no `fileUrl`), is a 400.

- Verbs that mean done (`DONE_VERBS`): ADL `completed` and `passed`, cmi5 `satisfied`; any
  other verb is acknowledged and ignored.
- The statement `id` is the idempotency key (a statement without one gets a key from its
  content, as an LRS would give it an id).
- The learner is the actor's `mbox` (an e-mail address) and/or `account.name` (taken as
  the employee number; in cmi5 the actor is always an account).
- The certificate is the attachment whose `usageType` is the configured IRI
  (`YFDOCS_XAPI_CERTIFICATE_USAGE_TYPE`); failing that, the statement's only PDF
  attachment. An attachment given by `fileUrl` instead of a part is fetched.
- The course is `object.definition.name` (any language); the completion date the
  statement's `timestamp`.

Signed statements carry a JWS attachment (`SIGNATURE_USAGE_TYPE`); it is not checked here:
the caller's key authenticates the request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from intake.events import (
    CompletionEvent,
    Ignored,
    MalformedDelivery,
    NoCertificate,
    business_key,
    completion_date,
    text_at,
)

__all__ = [
    "DONE_VERBS",
    "SIGNATURE_USAGE_TYPE",
    "StatementsRequest",
    "events_from_statements",
    "parse_statements_request",
]

DONE_VERBS = frozenset(
    {
        "http://adlnet.gov/expapi/verbs/completed",
        "http://adlnet.gov/expapi/verbs/passed",
        "https://w3id.org/xapi/adl/verbs/satisfied",
    }
)
SIGNATURE_USAGE_TYPE = "http://adlnet.gov/expapi/attachments/signature"
SOURCE = "xapi"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_PARTS = 32


@dataclass(frozen=True)
class StatementsRequest:
    """The statements of one request and the attachment parts' bytes by their SHA-256."""

    statements: list[dict[str, Any]]
    attachments: dict[str, bytes] = field(default_factory=dict)


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)


def _split_multipart(body: bytes, boundary: bytes) -> list[_Part]:
    """The parts of a multipart body, each with its headers (lower-cased names)."""
    parts: list[_Part] = []
    header_name: list[bytes] = []
    header_value: list[bytes] = []
    finished = False

    def on_part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise MalformedDelivery("body", f"more than {MAX_PARTS} parts")
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.append(data[start:end])

    def on_header_end() -> None:
        name = b"".join(header_name).decode("latin-1").strip().lower()
        parts[-1].headers[name] = b"".join(header_value).decode("latin-1").strip()
        header_name.clear()
        header_value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].chunks.append(data[start:end])

    def on_end() -> None:
        nonlocal finished
        finished = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_end": on_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except MalformedDelivery:
        raise
    except Exception as exc:  # python-multipart raises several kinds for a broken body
        raise MalformedDelivery("body", f"the multipart body cannot be read: {exc}") from None
    if not finished or not parts:
        raise MalformedDelivery("body", "the multipart body ends before its closing boundary")
    return parts


def _statements(raw: bytes) -> list[dict[str, Any]]:
    try:
        decoded = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MalformedDelivery("statements", "the statements are not JSON") from None
    statements = decoded if isinstance(decoded, list) else [decoded]
    if not statements or not all(isinstance(item, dict) for item in statements):
        raise MalformedDelivery("statements", "expected a statement object or a list of them")
    return statements


def parse_statements_request(content_type: str | None, body: bytes) -> StatementsRequest:
    """The statements and attachment parts of a `POST statements` body."""
    kind, options = parse_options_header(content_type or "")
    if kind == b"application/json":
        return StatementsRequest(_statements(body))
    if kind != b"multipart/mixed" or not options.get(b"boundary"):
        raise MalformedDelivery(
            "Content-Type", "send application/json, or multipart/mixed with a boundary"
        )
    first, *rest = _split_multipart(body, options[b"boundary"])
    if parse_options_header(first.headers.get("content-type", ""))[0] != b"application/json":
        raise MalformedDelivery("statements", "the first part must be application/json")
    attachments: dict[str, bytes] = {}
    for number, part in enumerate(rest, start=2):
        declared = part.headers.get("x-experience-api-hash", "").lower()
        if not _SHA256.fullmatch(declared):
            raise MalformedDelivery(
                "X-Experience-API-Hash", f"part {number} has no X-Experience-API-Hash (SHA-256)"
            )
        encoding = part.headers.get("content-transfer-encoding", "binary").lower()
        if encoding != "binary":
            raise MalformedDelivery(
                "Content-Transfer-Encoding", f"part {number}: Content-Transfer-Encoding {encoding}"
            )
        content = b"".join(part.chunks)
        if hashlib.sha256(content).hexdigest() != declared:
            raise MalformedDelivery(
                "X-Experience-API-Hash",
                f"part {number}: its bytes do not match its X-Experience-API-Hash",
            )
        attachments[declared] = content
    return StatementsRequest(_statements(b"".join(first.chunks)), attachments)


def _language_value(value: Any) -> str | None:
    if isinstance(value, Mapping):
        for text in value.values():
            if isinstance(text, str) and text.strip():
                return text.strip()
    return None


def _course_name(statement: Mapping[str, Any]) -> str | None:
    activity = statement.get("object")
    definition = activity.get("definition") if isinstance(activity, Mapping) else None
    return _language_value(definition.get("name")) if isinstance(definition, Mapping) else None


def _certificate(statement: Mapping[str, Any], usage_type: str) -> Mapping[str, Any]:
    found = statement.get("attachments") or []
    if not isinstance(found, list) or not all(isinstance(a, dict) for a in found):
        raise MalformedDelivery("attachments", "attachments must be a list of objects")
    attachments: list[dict[str, Any]] = found
    marked = [a for a in attachments if a.get("usageType") == usage_type]
    if marked:
        return marked[0]
    pdfs = [
        a
        for a in attachments
        if a.get("contentType") == "application/pdf" and a.get("usageType") != SIGNATURE_USAGE_TYPE
    ]
    if len(pdfs) == 1:
        return pdfs[0]
    raise NoCertificate(
        "attachments",
        f"no attachment has usageType {usage_type}"
        + (f" and {len(pdfs)} PDFs are attached" if pdfs else " and none is a PDF"),
    )


def _event(
    statement: dict[str, Any], request: StatementsRequest, usage_type: str, tenant_id: str | None
) -> CompletionEvent | Ignored:
    verb = text_at(statement, "verb", "id")
    if verb not in DONE_VERBS:
        return Ignored(f"verb {verb!r} is not a completion")
    statement_id = text_at(statement, "id")
    if statement_id is not None and not _UUID.fullmatch(statement_id):
        raise MalformedDelivery("id", f"statement id {statement_id!r:.60} is not a UUID")
    key = (
        f"xapi:{statement_id.lower()}"
        if statement_id is not None
        else business_key("xapi", json.dumps(statement, sort_keys=True))
    )
    actor = statement.get("actor")
    if not isinstance(actor, dict) or actor.get("objectType", "Agent") != "Agent":
        raise MalformedDelivery("actor", "the actor must be an Agent (a learner, not a group)")
    attachment = _certificate(statement, usage_type)
    sha2 = str(attachment.get("sha2", "")).lower()
    pdf = request.attachments.get(sha2)
    file_url = text_at(attachment, "fileUrl")
    if pdf is None and file_url is None:
        raise MalformedDelivery(
            "attachments", f"the certificate attachment (sha2 {sha2[:16]}…) has no part"
        )
    return CompletionEvent(
        source=SOURCE,
        event_key=key,
        tenant_id=tenant_id,
        email=text_at(actor, "mbox"),
        employee_number=text_at(actor, "account", "name"),
        valid_from=completion_date(text_at(statement, "timestamp"), "timestamp"),
        pdf=pdf,
        certificate_url=None if pdf is not None else file_url,
        course_name=_language_value(
            (statement.get("object") or {}).get("definition", {}).get("name")
        ),
    )


def events_from_statements(
    request: StatementsRequest, *, certificate_usage_type: str, tenant_id: str | None = None
) -> list[CompletionEvent | Ignored]:
    """One completion (or `Ignored`) per statement, in order."""
    return [
        _event(statement, request, certificate_usage_type, tenant_id)
        for statement in request.statements
    ]
