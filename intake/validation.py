"""Checks on everything a producer hands in, made before anything is stored or enqueued.

Every refusal is an `EnqueueRejected` naming the field and the problem, so the CLI can print
one line and exit 2, the intake can answer 422, and nothing half-done is left behind:

    EnqueueRejected               (field, message; input refused, nothing stored)
    ├── ValidationError           (a value that breaks a rule)
    │   ├── InvalidPdf            (not a PDF, truncated, encrypted, empty, no pages)
    │   ├── FileTooLarge          (over YFDOCS_MAX_FILE_BYTES)
    │   ├── InvalidDocumentType   (not one of the seven)
    │   ├── InvalidPersonCode     (would not be a safe URL path segment)
    │   ├── InvalidValidFrom      (not a real YYYY-MM-DD date)
    │   ├── InvalidDescription    (empty, too long, control characters)
    │   ├── InvalidTenant         (missing, or not letters and digits)
    │   ├── InvalidIdempotencyKey (empty, too long, control characters)
    │   ├── InvalidEmail          (a learner's e-mail address that is not one)
    │   ├── InvalidEmployeeNumber (a learner's employee number that is no personCode)
    │   └── NoLearner             (neither a personCode nor an e-mail or employee number)
    └── IdempotencyConflict       (in `intake.producer`: a key reused for other content)

A file name is never refused: one that breaks the API's rules is sanitised, and the
original is kept for the record.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path, PurePosixPath, PureWindowsPath

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError

from api_client import DocumentType
from models.errors import Decision, YfdocsError

__all__ = [
    "MAX_CALLER_KEY_LENGTH",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_FILE_NAME_LENGTH",
    "EnqueueRejected",
    "FileName",
    "FileTooLarge",
    "InvalidDescription",
    "InvalidDocumentType",
    "InvalidEmail",
    "InvalidEmployeeNumber",
    "InvalidIdempotencyKey",
    "InvalidPdf",
    "InvalidPersonCode",
    "InvalidTenant",
    "InvalidValidFrom",
    "NoLearner",
    "PdfFacts",
    "ValidationError",
    "check_pdf",
    "default_description",
    "read_document",
    "sanitise_file_name",
    "validate_caller_key",
    "validate_description",
    "validate_document_type",
    "validate_email",
    "validate_employee_number",
    "validate_person_code",
    "validate_tenant_id",
    "validate_valid_from",
]

MAX_DESCRIPTION_LENGTH = 255
MAX_FILE_NAME_LENGTH = 128
MAX_ORIGINAL_FILE_NAME_LENGTH = 1024
MAX_CALLER_KEY_LENGTH = 200
MAX_EMAIL_LENGTH = 254
PDF_MAGIC = b"%PDF-"
EOF_MARKER = b"%%EOF"
EOF_SEARCH_WINDOW = 1024

_PERSON_CODE = re.compile(r"[A-Za-z0-9._-]{1,32}")
_TENANT_ID = re.compile(r"[A-Za-z0-9]{1,64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Deliberately plain: one @, a dot in the domain, no spaces or brackets. Mapping only ever
# compares it with the addresses Youforce holds; it is never sent anywhere.
_EMAIL = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\".]+")
_FILE_NAME_FORBIDDEN = re.compile(r"[^A-Za-z0-9 _\-.,$()]")
_RUNS_OF_UNDERSCORES = re.compile(r"_{2,}")


class EnqueueRejected(YfdocsError):
    """A producer's input was refused; nothing was stored or enqueued."""

    decision = Decision.REFUSE

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ValidationError(EnqueueRejected):
    """A value breaks one of the rules the API or this service sets."""


class InvalidPdf(ValidationError):
    """The bytes are not a complete, readable, unencrypted PDF with at least one page."""


class FileTooLarge(ValidationError):
    """The PDF is over the size the API accepts (YFDOCS_MAX_FILE_BYTES)."""


class InvalidDocumentType(ValidationError):
    """The type is not one of the seven personnel-file folders."""


class InvalidPersonCode(ValidationError):
    """The personCode would not be a safe path segment of the upload URL."""


class InvalidValidFrom(ValidationError):
    """ValidFrom is not a real calendar date in YYYY-MM-DD form."""


class InvalidDescription(ValidationError):
    """The description is empty, too long, or carries control characters."""


class InvalidTenant(ValidationError):
    """No tenant id was given, or it is not letters and digits."""


class InvalidIdempotencyKey(ValidationError):
    """The caller's key is empty, too long, or carries control characters."""


class InvalidEmail(ValidationError):
    """A learner's e-mail address that is not an address."""


class InvalidEmployeeNumber(ValidationError):
    """A learner's employee number that could not be a personCode."""


class NoLearner(ValidationError):
    """The request names nobody: no personCode, no e-mail address, no employee number."""


@dataclass(frozen=True)
class PdfFacts:
    """What the checks learned about an accepted PDF."""

    size_bytes: int
    sha256: str
    pages: int


@dataclass(frozen=True)
class FileName:
    """The name sent to the API, and the one the producer gave (kept for the record)."""

    file_name: str
    original_file_name: str

    @property
    def was_sanitised(self) -> bool:
        return self.file_name != self.original_file_name


def read_document(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing an oversized file before reading it into memory."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise InvalidPdf("file", f"{path} is not a regular file")
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise InvalidPdf("file", f"{path} does not exist") from None
    except PermissionError:
        raise InvalidPdf("file", f"{path} cannot be read (permission denied)") from None
    except IsADirectoryError:
        raise InvalidPdf("file", f"{path} is a directory, not a PDF file") from None
    return data


def _too_large(size: int, max_bytes: int) -> FileTooLarge:
    return FileTooLarge(
        "file", f"the PDF is {size:,} bytes; the largest accepted is {max_bytes:,} bytes"
    )


def check_pdf(data: bytes, max_bytes: int) -> PdfFacts:
    """Accept only a whole, unencrypted PDF with a page, judged by content, never by name.

    The magic bytes keep out images and text renamed `.pdf`; the `%%EOF` marker at the end
    and a parse with pypdf keep out truncated and damaged files, which the API would only
    refuse hours later.
    """
    size = len(data)
    if size == 0:
        raise InvalidPdf("file", "the file is empty")
    if size > max_bytes:
        raise _too_large(size, max_bytes)
    if not data.startswith(PDF_MAGIC):
        raise InvalidPdf("file", f"not a PDF: the content does not start with {PDF_MAGIC!r}")
    if EOF_MARKER not in data[-EOF_SEARCH_WINDOW:]:
        raise InvalidPdf("file", "the PDF is truncated: no %%EOF marker at its end")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise InvalidPdf("file", "the PDF is encrypted (password protected)")
        pages = len(reader.pages)
        if pages > 0:
            reader.pages[0].mediabox  # noqa: B018  (parses the first page object)
    except InvalidPdf:
        raise
    except FileNotDecryptedError:
        raise InvalidPdf("file", "the PDF is encrypted (password protected)") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise InvalidPdf("file", f"the PDF is damaged and cannot be read: {exc}") from None
    except RecursionError:
        raise InvalidPdf("file", "the PDF is damaged: its object tree loops") from None
    if pages == 0:
        raise InvalidPdf("file", "the PDF has no pages")
    return PdfFacts(size_bytes=size, sha256=hashlib.sha256(data).hexdigest(), pages=pages)


def sanitise_file_name(name: str) -> FileName:
    """A name the API accepts (letters, digits, space, `_ - . , $ ( )`, ending in `.pdf`).

    Directories are dropped, accents folded (`é` -> `e`), anything else becomes `_`, the
    extension is `.pdf` in lower case and the whole is at most 128 characters.
    """
    # NUL is the one character a database (PostgreSQL) cannot store; an upload's name can
    # carry it, a file on disk never does.
    original = name.replace("\x00", "")[:MAX_ORIGINAL_FILE_NAME_LENGTH]
    base = PureWindowsPath(PurePosixPath(name).name).name
    folded = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    cleaned = _RUNS_OF_UNDERSCORES.sub("_", _FILE_NAME_FORBIDDEN.sub("_", folded)).strip(" ")
    stem = cleaned[:-4] if cleaned.lower().endswith(".pdf") else cleaned
    stem = stem.strip(" .")
    if not any(character.isalnum() for character in stem):
        stem = "document"
    stem = stem[: MAX_FILE_NAME_LENGTH - 4].rstrip(" .")
    return FileName(file_name=f"{stem}.pdf", original_file_name=original)


def validate_document_type(value: str | DocumentType) -> DocumentType:
    """One of the seven types, by API value or by name, any case."""
    try:
        return DocumentType.parse(value)
    except ValueError:
        valid = ", ".join(member.value for member in DocumentType)
        raise InvalidDocumentType(
            "document_type", f"unknown document type {value!r}; use one of: {valid}"
        ) from None


def validate_person_code(value: str) -> str:
    """A personCode that is safe as a path segment: `../x`, `a/b`, `a?b`, `%2e` never pass."""
    if not isinstance(value, str) or not _PERSON_CODE.fullmatch(value) or value in {".", ".."}:
        raise InvalidPersonCode(
            "person_code",
            f"invalid personCode {value!r}: use 1-32 letters, digits, '-', '_' or '.' "
            "(and not '.' or '..')",
        )
    return value


def validate_email(value: str) -> str:
    """A learner's address, lower-cased, without a `mailto:` prefix (xAPI's `mbox`)."""
    text = value.strip() if isinstance(value, str) else ""
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    if (
        len(text) > MAX_EMAIL_LENGTH
        or not _EMAIL.fullmatch(text)
        or any(unicodedata.category(character) == "Cc" for character in text)
    ):
        raise InvalidEmail("email", f"invalid e-mail address {value!r:.80}")
    return text.lower()


def validate_employee_number(value: str) -> str:
    """An employee number, which mapping compares with the personCodes Youforce holds."""
    if not isinstance(value, str) or not _PERSON_CODE.fullmatch(value) or value in {".", ".."}:
        raise InvalidEmployeeNumber(
            "employee_number",
            f"invalid employee number {value!r:.80}: use 1-32 letters, digits, '-', '_' or '.'",
        )
    return value


def validate_valid_from(value: str | date | None) -> date | None:
    """A real calendar date (`YYYY-MM-DD`), or None/empty for "the API's system date"."""
    if value is None:
        return None
    if isinstance(value, datetime):
        raise InvalidValidFrom("valid_from", "validFrom must be a date, not a date and time")
    if isinstance(value, date):
        return value
    text = value.strip() if isinstance(value, str) else value
    if text == "":
        return None
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise InvalidValidFrom(
            "valid_from", f"invalid validFrom {value!r}: expected a date as YYYY-MM-DD"
        )
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidValidFrom(
            "valid_from", f"invalid validFrom {value!r}: there is no such calendar date"
        ) from None


def validate_description(value: str) -> str:
    """A description the personnel file can show: stripped, 1-255 characters, printable."""
    if not isinstance(value, str):
        raise InvalidDescription("description", "the description must be text")
    text = value.strip()
    if not text:
        raise InvalidDescription("description", "the description is empty")
    if len(text) > MAX_DESCRIPTION_LENGTH:
        raise InvalidDescription(
            "description",
            f"the description is {len(text)} characters; at most {MAX_DESCRIPTION_LENGTH}",
        )
    if any(unicodedata.category(character) == "Cc" for character in text):
        raise InvalidDescription("description", "the description contains control characters")
    return text


def validate_tenant_id(value: str | None) -> str:
    """The tenant the document belongs to: letters and digits, as Youforce numbers them."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidTenant("tenant_id", "no tenant id: pass --tenant or set YFDOCS_TENANT_ID")
    text = value.strip()
    if not _TENANT_ID.fullmatch(text):
        raise InvalidTenant(
            "tenant_id", f"invalid tenant id {value!r}: use 1-64 letters and digits only"
        )
    return text


def validate_caller_key(value: str) -> str:
    """An idempotency key from the caller (an LMS event id): short, printable text."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidIdempotencyKey("key", "the idempotency key is empty")
    if len(text) > MAX_CALLER_KEY_LENGTH:
        raise InvalidIdempotencyKey(
            "key", f"the idempotency key is {len(text)} characters; at most {MAX_CALLER_KEY_LENGTH}"
        )
    if any(unicodedata.category(character) == "Cc" for character in text):
        raise InvalidIdempotencyKey("key", "the idempotency key contains control characters")
    return text


_TYPE_LABELS = {
    DocumentType.CERTIFICATE: "Certificate",
    DocumentType.DIPLOMA: "Diploma",
    DocumentType.APPRAISAL_REVIEW: "Appraisal review",
    DocumentType.PERFORMANCE_REVIEW: "Performance review",
    DocumentType.CAREER_AGREEMENT: "Career agreement",
    DocumentType.CAREER_MAIL: "Career correspondence",
    DocumentType.CAREER_OTHER: "Career document",
}


def default_description(document_type: DocumentType, file_name: str) -> str:
    """`<type label>: <file name without .pdf>`, e.g. `Diploma: First aid 2024`."""
    stem = os.path.splitext(file_name)[0] or file_name
    return f"{_TYPE_LABELS[document_type]}: {stem}"[:MAX_DESCRIPTION_LENGTH]
