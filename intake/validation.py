"""Checks on everything a producer hands in, made before anything is stored or enqueued.

Every refusal is an `EnqueueRejected` naming the field and the problem, so the CLI can print
one line and exit 2, the intake can answer 422, and nothing half-done is left behind:

    EnqueueRejected               (field, message; input refused, nothing stored)
    ├── ValidationError           (a value that breaks a rule)
    │   ├── InvalidPdf            (not a PDF, truncated, needs a password, empty, no pages,
    │   │                          active content)
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

import errno
import hashlib
import io
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from pypdf import PasswordType, PdfReader, apply_configuration
from pypdf.errors import FileNotDecryptedError, LimitReachedError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

from api_client import DocumentType
from models.errors import Decision, YfdocsError

__all__ = [
    "MAX_CALLER_KEY_LENGTH",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_FILE_NAME_LENGTH",
    "MAX_INSPECTED_CONTAINERS",
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
    "active_content",
    "check_pdf",
    "default_description",
    "describe_file_error",
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
# A stream may inflate to this many times the largest file accepted (object streams of
# text compress about 5:1), and never less than this many bytes.
INFLATE_FACTOR = 8
MIN_INFLATED_BYTES = 1 << 20
# A certificate has a few hundred; a file with more is not walked to the end.
MAX_INSPECTED_CONTAINERS = 100_000

_PERSON_CODE = re.compile(r"[A-Za-z0-9._-]{1,32}")
_TENANT_ID = re.compile(r"[A-Za-z0-9]{1,64}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_REVISION_PART = re.compile(rb"\d+\s+\d+\s+obj\b|\b(?:xref|trailer|startxref)\b")
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
    """The bytes are not a complete, readable PDF with a page that opens without a password."""


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


def read_document(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The file's bytes, refusing anything but a regular file within the size limit.

    The path is taken as given: `cert.pdf/` names a directory even though `pathlib` would
    drop the slash. The file is opened once and judged by its descriptor, so a file
    swapped between the check and the read is not read, and a FIFO never blocks.
    """
    raw = os.fspath(path)
    shown = _shown_path(raw)
    if raw.endswith(("/", os.sep)):
        raise InvalidPdf("file", f"{shown} names a directory (it ends in '/'), not a PDF file")
    if "\x00" in raw:
        raise InvalidPdf("file", f"{shown} is not a usable path: it contains a NUL character")
    try:
        descriptor = os.open(raw, _OPEN_FLAGS)
    except OSError as exc:
        raise _unreadable(raw, exc) from None
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise InvalidPdf("file", f"{shown} is not a regular file: it is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise InvalidPdf("file", f"{shown} is not a regular file")
        if info.st_size > max_bytes:
            raise _too_large(info.st_size, max_bytes)
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return handle.read(max_bytes + 1)
    except OSError as exc:
        raise _unreadable(raw, exc) from None
    finally:
        os.close(descriptor)


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
_ERRNO_WORDING = {
    errno.ENOENT: "does not exist",
    errno.EACCES: "cannot be read (permission denied)",
    errno.EPERM: "cannot be read (permission denied)",
    errno.EISDIR: "is a directory, not a file",
    errno.ENAMETOOLONG: "cannot be opened: the name is too long",
    errno.ELOOP: "cannot be opened: too many levels of symbolic links (a symlink loop)",
    errno.ENOTDIR: "cannot be opened: a part of the path is a file, not a directory",
}
_SHOWN_PATH_LENGTH = 160


def _unreadable(raw: str, exc: OSError) -> InvalidPdf:
    return InvalidPdf("file", describe_file_error(raw, exc))


def describe_file_error(path: str, exc: OSError) -> str:
    """One line naming the path and, in words, what the file system said (by errno)."""
    wording = _ERRNO_WORDING.get(exc.errno or 0)
    if wording is None:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        wording = f"cannot be read: {reason}"
    return f"{_shown_path(path)} {wording}"


def _shown_path(raw: str) -> str:
    """The path for a message: a very long one keeps its start and its end."""
    if len(raw) <= _SHOWN_PATH_LENGTH:
        return raw
    half = _SHOWN_PATH_LENGTH // 2
    return f"{raw[:half]}...{raw[-half:]} ({len(raw)} characters)"


def _too_large(size: int, max_bytes: int) -> FileTooLarge:
    return FileTooLarge(
        "file", f"the PDF is {size:,} bytes; the largest accepted is {max_bytes:,} bytes"
    )


def check_pdf(data: bytes, max_bytes: int, *, refuse_active_content: bool = True) -> PdfFacts:
    """Accept only a whole PDF with a page that opens without a password, judged by content.

    The magic bytes keep out images and text renamed `.pdf`; the `%%EOF` marker and a parse
    with pypdf keep out truncated and damaged files, which the API would only refuse hours
    later. With `refuse_active_content` (YFDOCS_PDF_ACTIVE_CONTENT=refuse, the default) a
    PDF that can act when opened is refused too (`active_content`).
    """
    size = len(data)
    if size == 0:
        raise InvalidPdf("file", "the file is empty")
    if size > max_bytes:
        raise _too_large(size, max_bytes)
    if not data.startswith(PDF_MAGIC):
        raise InvalidPdf("file", f"not a PDF: the content does not start with {PDF_MAGIC!r}")
    _check_complete(data)
    with apply_configuration(**_parse_limits(max_bytes)):
        pages = _read_structure(data, refuse_active_content=refuse_active_content)
    if pages == 0:
        raise InvalidPdf("file", "the PDF has no pages")
    return PdfFacts(size_bytes=size, sha256=hashlib.sha256(data).hexdigest(), pages=pages)


def _check_complete(data: bytes) -> None:
    """Refuse a file cut short: no `%%EOF`, or PDF structure after the last one.

    Readers take the last `%%EOF` wherever it is and ignore what follows (a signature's
    padding, a mail gateway's footer), so bytes after it are allowed, however many; but
    objects, an xref or a trailer after it are the start of a revision that was cut off.
    """
    last = data.rfind(EOF_MARKER)
    if last < 0:
        raise InvalidPdf("file", "the PDF is truncated: no %%EOF marker")
    if _REVISION_PART.search(data, last + len(EOF_MARKER)):
        raise InvalidPdf(
            "file", "the PDF is truncated: its last revision ends without an %%EOF marker"
        )


def _parse_limits(max_bytes: int) -> dict[str, Any]:
    """pypdf's limits, scaled to the largest file accepted: memory and work stay bounded.

    pypdf's defaults let one stream inflate to 75 MB and a file do 300 MB of decoding work;
    a certificate of at most `max_bytes` needs a fraction of that. No external decoder is
    ever run on a caller's bytes.
    """
    inflated = max(INFLATE_FACTOR * max_bytes, MIN_INFLATED_BYTES)
    return {
        "maximum_declared_stream_length": max_bytes,
        "array_based_stream_maximum_output_length": inflated,
        "zlib_maximum_output_length": inflated,
        "lzw_maximum_output_length": inflated,
        "run_length_maximum_output_length": inflated,
        "brotli_maximum_output_length": inflated,
        "jbig2_maximum_output_length": inflated,
        "image_maximum_buffer_size": inflated,
        "stream_decoding_work_maximum_length": 2 * inflated,
        "xfa_decoding_work_maximum_length": 2 * inflated,
        "jbig2dec_binary": None,
    }


def _needs_a_password() -> InvalidPdf:
    return InvalidPdf("file", "the PDF is encrypted: it cannot be opened without a password")


def _read_structure(data: bytes, *, refuse_active_content: bool) -> int:
    """Parse the structure (under the limits the caller set), look for active content and
    count the pages.

    A PDF locked with an owner password only (against printing or editing, as many
    certificates are) opens with the empty user password, as every viewer opens it: it is
    accepted and sent as it is. Only a PDF that needs a password to open is refused.

    pypdf meeting hostile bytes raises far more than `PdfReadError` (KeyError, TypeError,
    OverflowError, zlib.error, ...): whatever it raises, the file cannot be read, and
    that is a refusal, never a traceback.
    """
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and reader.decrypt("") is PasswordType.NOT_DECRYPTED:
            raise _needs_a_password()
        pages = len(reader.pages)
        if pages > 0:
            reader.pages[0].mediabox  # noqa: B018  (parses the first page object)
        found = active_content(reader) if refuse_active_content else []
        if found:
            raise InvalidPdf(
                "file",
                f"the PDF contains active content ({', '.join(found)}), which a personnel "
                "file does not accept (YFDOCS_PDF_ACTIVE_CONTENT=refuse)",
            )
    except InvalidPdf:
        raise
    except FileNotDecryptedError:
        raise _needs_a_password() from None
    except LimitReachedError as exc:
        raise InvalidPdf(
            "file", f"the PDF is refused: reading it goes past a safety limit ({exc})"
        ) from None
    except RecursionError:
        raise InvalidPdf("file", "the PDF is damaged: its object tree loops") from None
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        raise InvalidPdf("file", f"the PDF is damaged and cannot be read: {reason}") from None
    return pages


def active_content(reader: PdfReader) -> list[str]:
    """What in the document can act by itself when it is opened, in the order found.

    JavaScript (an action or a `/JS` anywhere: open actions, page and field actions,
    links, the document's names tree), a Launch action (starts a program), an embedded
    file or a file attachment annotation (any file, an executable included), an XFA form
    (it carries its own scripts). Every object reachable from the catalog is visited once,
    whatever the layout (object streams, hex-escaped names), so no byte trick hides one;
    more than `MAX_INSPECTED_CONTAINERS` dictionaries and arrays is refused rather than
    walked without end.
    """
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    pending: list[Any] = [dict.get(reader.trailer, "/Root")]
    inspected = 0
    while pending:
        node = pending.pop()
        if isinstance(node, IndirectObject):
            if (node.idnum, node.generation) in seen:
                continue
            seen.add((node.idnum, node.generation))
            node = node.get_object()
        if isinstance(node, DictionaryObject):
            found.extend(kind for kind in _active_kinds(node) if kind not in found)
            children: list[Any] = list(dict.values(node))
        elif isinstance(node, ArrayObject):
            children = list.copy(node)
        else:
            continue
        inspected += 1
        if inspected > MAX_INSPECTED_CONTAINERS:
            raise InvalidPdf(
                "file",
                f"the PDF has more than {MAX_INSPECTED_CONTAINERS:,} dictionaries and arrays "
                "to inspect for active content",
            )
        pending.extend(child for child in children if isinstance(child, _CONTAINERS))
    return found


_CONTAINERS = (DictionaryObject, ArrayObject, IndirectObject)


def _active_kinds(node: DictionaryObject) -> list[str]:
    def named(key: str) -> Any:
        value = dict.get(node, key)
        return value.get_object() if isinstance(value, IndirectObject) else value

    action = named("/S")
    kinds = []
    if "/JS" in node or "/JavaScript" in node or action == "/JavaScript":
        kinds.append("JavaScript")
    if action == "/Launch":
        kinds.append("a Launch action")
    if "/EF" in node or "/EmbeddedFiles" in node or named("/Type") == "/EmbeddedFile":
        kinds.append("an embedded file")
    if named("/Subtype") == "/FileAttachment":
        kinds.append("a file attachment annotation")
    if "/XFA" in node:
        kinds.append("an XFA form")
    return kinds


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
    if isinstance(text, str) and any(c.isdigit() and not c.isascii() for c in text):
        raise InvalidValidFrom(
            "valid_from",
            f"invalid validFrom {value!r}: write the date in ASCII digits, as YYYY-MM-DD",
        )
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
