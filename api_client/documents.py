"""Document types, upload bodies (v1.1 form-data, v1.0 related) and the upload receipt.

Wire decisions, per the API reference section 4:
- v1.1 `multipart/form-data` parts, casing exact: `Description`, `ValidFrom`, `file`.
  `ValidFrom` is always sent; when no date is given it is sent empty, which the API documents
  as "use the system date" (the vendor's Postman collection sends the field too).
- v1.0 `multipart/related; type="application/json"` (RFC 2387 requires `type=`, the root
  part's media type): a JSON part (`application/json; charset=UTF-8`) with
  `Description` and, only when a date is given, `ValidFrom` (a JSON null or "" may not bind
  to a date), then the PDF part (`application/pdf`, with the filename in a
  `Content-Disposition: attachment` header).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

from .multipart import BytesPart, FilePart, MultipartBody
from .tickets import TicketStatus

__all__ = ["DocumentType", "UploadPdf", "UploadReceipt", "form_data_body", "related_body"]


class DocumentType(StrEnum):
    """The seven document types; the value is the API path segment."""

    CERTIFICATE = "certificate"
    DIPLOMA = "diploma"
    APPRAISAL_REVIEW = "appraisalReview"
    PERFORMANCE_REVIEW = "performanceReview"
    CAREER_AGREEMENT = "careerAgreement"
    CAREER_MAIL = "careerMail"
    CAREER_OTHER = "careerOther"

    @classmethod
    def parse(cls, text: str | DocumentType) -> DocumentType:
        """A type from its value or name, any case (`diploma`, `DIPLOMA`, `appraisal-review`)."""
        if isinstance(text, DocumentType):
            return text
        if isinstance(text, str):
            folded = text.strip().casefold()
            squeezed = folded.replace("_", "").replace("-", "").replace(" ", "")
            for member in cls:
                if squeezed in (member.value.casefold(), member.name.casefold().replace("_", "")):
                    return member
        valid = ", ".join(member.value for member in cls)
        raise ValueError(f"unknown document type {text!r}; valid types: {valid}")


@dataclass(frozen=True)
class UploadReceipt:
    """The API's answer to an upload: the ticket to follow, and what it recorded."""

    ticket_id: str
    description: str
    size: int
    tenant_id: str
    created_at_raw: str
    status: TicketStatus
    correlation_id: str | None

    @classmethod
    def from_payload(
        cls,
        payload: Any,
        correlation_id: str | None,
        number_map: dict[int, str] | None = None,
    ) -> UploadReceipt:
        """Read the documented answer; ValueError when it lacks what the job needs."""
        if not isinstance(payload, dict):
            raise ValueError("the upload answer is not a JSON object")
        ticket_id = payload.get("ticketId")
        if not isinstance(ticket_id, str) or not ticket_id.strip():
            raise ValueError("the upload answer has no ticketId")
        size = payload.get("size", 0)
        if isinstance(size, bool) or not isinstance(size, (int, str)):
            raise ValueError(f"size {size!r} is not a number")
        try:
            size_value = int(size)
        except ValueError:
            raise ValueError(f"size {size!r} is not a number") from None
        tenant = payload.get("tenantId")
        created = payload.get("creationDateTime")
        status = TicketStatus.from_api(
            payload.get("status", "InProgress"), payload.get("errorMessages"), number_map
        )
        description = payload.get("description")
        return cls(
            ticket_id=ticket_id,
            description=description if isinstance(description, str) else "",
            size=size_value,
            tenant_id="" if tenant is None else str(tenant),
            created_at_raw="" if created is None else str(created),
            status=status,
            correlation_id=correlation_id,
        )


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class UploadPdf:
    """The PDF of one upload: a file, or a seekable stream sent from `start`; `size` bytes;
    the name it is filed under. A body built from it reads it afresh each time."""

    source: Path | BinaryIO
    size: int
    filename: str
    start: int = 0

    def part(self, headers: list[tuple[str, str]]) -> FilePart:
        return FilePart(headers, self.source, self.size, self.start)


def form_data_body(description: str, valid_from: date | None, pdf: UploadPdf) -> MultipartBody:
    """The v1.1 upload body; a new one per attempt."""
    valid = valid_from.isoformat() if valid_from is not None else ""
    return MultipartBody(
        [
            BytesPart(
                [("Content-Disposition", 'form-data; name="Description"')],
                description.encode("utf-8"),
            ),
            BytesPart(
                [("Content-Disposition", 'form-data; name="ValidFrom"')], valid.encode("ascii")
            ),
            pdf.part(
                [
                    (
                        "Content-Disposition",
                        f'form-data; name="file"; filename="{_quoted(pdf.filename)}"',
                    ),
                    ("Content-Type", "application/pdf"),
                ]
            ),
        ],
        subtype="form-data",
    )


def related_body(description: str, valid_from: date | None, pdf: UploadPdf) -> MultipartBody:
    """The v1.0 upload body (certificates only); a new one per attempt."""
    metadata: dict[str, str] = {"Description": description}
    if valid_from is not None:
        metadata["ValidFrom"] = valid_from.isoformat()
    return MultipartBody(
        [
            BytesPart(
                [("Content-Type", "application/json; charset=UTF-8")],
                json.dumps(metadata, ensure_ascii=False).encode("utf-8"),
            ),
            pdf.part(
                [
                    ("Content-Type", "application/pdf"),
                    ("Content-Disposition", f'attachment; filename="{_quoted(pdf.filename)}"'),
                ]
            ),
        ],
        subtype="related",
        root_type="application/json",
    )
