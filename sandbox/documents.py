"""Upload validation: exactly the rules the vendor states, checked on what arrived.

v1.1 is `multipart/form-data` with parts `Description`, `ValidFrom` (optional) and `file`;
v1.0 is `multipart/related` with a JSON part and a PDF part, and the `type=` parameter
that RFC 2387 requires, naming the root (JSON) part's media type. Both end in the same
checks: a PDF by content and structure (not by name; see `sandbox.pdf`), at most
`max_file_bytes` (a 400, since the documented error table has no 413), a file name of
allowed characters only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date

from sandbox.errors import ApiError
from sandbox.multipart import MultipartError, Part, parse_media_type, parse_multipart
from sandbox.pdf import pdf_structure_problem

__all__ = [
    "DOCUMENT_TYPES",
    "UploadRequest",
    "filename_is_allowed",
    "looks_like_pdf",
    "parse_upload_v10",
    "parse_upload_v11",
]

DOCUMENT_TYPES: dict[str, str] = {
    "certificate": "certificaat",
    "diploma": "diploma",
    "appraisalReview": "beoordelingsGesprek",
    "performanceReview": "functioneringsGesprek",
    "careerAgreement": "loopbaanafspraken",
    "careerMail": "corrLoopbaan",
    "careerOther": "ovLoopbaan",
}

_FILENAME_RE = re.compile(r"[A-Za-z0-9 _\-.,$()]+")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_V11_PARTS = ("Description", "ValidFrom", "file")
_QUOTED_TYPE_RE = re.compile(r';\s*type\s*=\s*"', re.IGNORECASE)


@dataclass(frozen=True)
class UploadRequest:
    """What a valid upload carried, after every check passed."""

    description: str
    valid_from: str
    filename: str | None
    data: bytes
    parts: list[Part]


def filename_is_allowed(filename: str) -> bool:
    """Letters, digits, space and `_ - . , $ ( )` only (vendor page on file names).

    "Letters" is read as ASCII letters: the page lists no accented ones.
    """
    return bool(_FILENAME_RE.fullmatch(filename))


def looks_like_pdf(data: bytes) -> bool:
    """A PDF by content and structure: header, cross-references, trailer, a page."""
    return pdf_structure_problem(data) is None


def _check_boundary(content_type: str | None, expected: str) -> tuple[str, dict[str, str]]:
    media_type, params = parse_media_type(content_type)
    if media_type != expected:
        raise ApiError(
            415,
            f"Unsupported content type {media_type or '(none)'!r}; expected {expected}.",
            "UnsupportedMediaType",
        )
    boundary = params.get("boundary")
    if not boundary:
        raise ApiError.validation("Content-Type", f"{expected} needs a boundary parameter.")
    return boundary, params


def _split(body: bytes, boundary: str) -> list[Part]:
    try:
        return parse_multipart(body, boundary)
    except MultipartError as exc:
        raise ApiError.validation("body", f"Malformed multipart body: {exc}.") from exc


def _check_valid_from(value: str) -> str:
    if value == "":
        return value
    problem = "ValidFrom must be a date in the format YYYY-MM-DD."
    if not _DATE_RE.fullmatch(value):
        raise ApiError.validation("ValidFrom", problem)
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise ApiError.validation("ValidFrom", problem) from exc
    return value


def _check_description(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError.validation("Description", "The Description field is required.")
    return value


def _check_file(data: bytes, filename: str | None, max_bytes: int, field_name: str) -> None:
    if filename is not None and not filename_is_allowed(filename):
        raise ApiError.validation(
            field_name,
            "The file name may contain only letters, digits, spaces and _ - . , $ ( ).",
        )
    if len(data) > max_bytes:
        raise ApiError.validation(
            field_name, f"The file is larger than the maximum of {max_bytes} bytes."
        )
    if not data.startswith(b"%PDF-"):
        raise ApiError.validation(field_name, "Only PDF files are accepted.")
    problem = pdf_structure_problem(data)
    if problem is not None:
        raise ApiError.validation(
            field_name, f"Only PDF files are accepted; this file is not a valid PDF: {problem}."
        )


def _text_value(part: Part) -> str:
    if part.filename is not None:
        raise ApiError.validation(part.name or "", f"Part {part.name!r} must be text, not a file.")
    if part.content_type not in (None, "text/plain"):
        raise ApiError.validation(part.name or "", f"Part {part.name!r} must be text/plain.")
    try:
        return part.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError.validation(part.name or "", f"Part {part.name!r} is not UTF-8.") from exc


def parse_upload_v11(content_type: str | None, body: bytes, max_bytes: int) -> UploadRequest:
    """Validate a v1.1 `multipart/form-data` upload."""
    boundary, _params = _check_boundary(content_type, "multipart/form-data")
    parts = _split(body, boundary)
    by_name: dict[str, Part] = {}
    for part in parts:
        if part.disposition != "form-data" or not part.name:
            raise ApiError.validation("body", "Every part needs Content-Disposition: form-data.")
        if part.name not in _V11_PARTS:
            expected = ", ".join(_V11_PARTS)
            raise ApiError.validation(
                part.name, f"Unexpected part {part.name!r}; expected {expected}."
            )
        if part.name in by_name:
            raise ApiError.validation(part.name, f"Part {part.name!r} appears more than once.")
        by_name[part.name] = part
    description = _check_description(
        _text_value(by_name["Description"]) if "Description" in by_name else None
    )
    valid_from = _check_valid_from(
        _text_value(by_name["ValidFrom"]) if "ValidFrom" in by_name else ""
    )
    file_part = by_name.get("file")
    if file_part is None:
        raise ApiError.validation("file", "The file field is required.")
    if not file_part.filename:
        raise ApiError.validation("file", "The file part needs a filename.")
    if file_part.content_type != "application/pdf":
        raise ApiError.validation(
            "file", f"The file must be sent as application/pdf, not {file_part.content_type}."
        )
    _check_file(file_part.data, file_part.filename, max_bytes, "file")
    return UploadRequest(description, valid_from, file_part.filename, file_part.data, parts)


def parse_upload_v10(content_type: str | None, body: bytes, max_bytes: int) -> UploadRequest:
    """Validate a v1.0 `multipart/related` certificate upload (JSON part, then PDF part)."""
    boundary, params = _check_boundary(content_type, "multipart/related")
    root_type = params.get("type")
    if root_type is not None and not _QUOTED_TYPE_RE.search(content_type or ""):
        # A media type holds "/", a tspecial: as a parameter value it must be quoted
        # (RFC 2045 section 5.1); unquoted, a strict parser reads `type=application`.
        raise ApiError.validation(
            "Content-Type", 'The type parameter must be a quoted string, type="application/json".'
        )
    if not root_type:
        # RFC 2387 section 3.1: "The type parameter must be specified".
        raise ApiError.validation(
            "Content-Type", "multipart/related needs a type parameter (RFC 2387)."
        )
    parts = _split(body, boundary)
    if len(parts) != 2:
        raise ApiError.validation("body", f"Expected 2 parts (metadata, file), got {len(parts)}.")
    metadata_part, file_part = parts
    if metadata_part.content_type != "application/json":
        raise ApiError.validation("metadata", "The first part must be application/json.")
    if "start" in params:
        # With `start`, the root is the part of that Content-ID; it must be the metadata.
        content_id = dict((name.lower(), value) for name, value in metadata_part.headers).get(
            "content-id"
        )
        if content_id != params["start"]:
            raise ApiError.validation(
                "Content-Type", "The start parameter must name the first (metadata) part."
            )
    if root_type.strip().lower() != metadata_part.content_type:
        raise ApiError.validation(
            "Content-Type",
            f"The type parameter {root_type!r} is not the root part's content type "
            f"({metadata_part.content_type}).",
        )
    charset = metadata_part.content_type_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiError.validation("metadata", "The metadata must be UTF-8.")
    try:
        metadata = json.loads(metadata_part.data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError.validation("metadata", "The first part is not valid JSON.") from exc
    if not isinstance(metadata, dict):
        raise ApiError.validation("metadata", "The metadata must be a JSON object.")
    unknown = sorted(set(metadata) - {"Description", "ValidFrom"})
    if unknown:
        raise ApiError.validation("metadata", f"Unexpected metadata fields: {unknown}.")
    description = _check_description(metadata.get("Description"))
    valid_from_raw = metadata.get("ValidFrom", "")
    if valid_from_raw is None:
        valid_from_raw = ""
    if not isinstance(valid_from_raw, str):
        raise ApiError.validation("ValidFrom", "ValidFrom must be a string date YYYY-MM-DD.")
    valid_from = _check_valid_from(valid_from_raw)
    if file_part.content_type != "application/pdf":
        raise ApiError.validation("file", "The second part must be application/pdf.")
    _check_file(file_part.data, file_part.filename, max_bytes, "file")
    return UploadRequest(description, valid_from, file_part.filename, file_part.data, parts)
