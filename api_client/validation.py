"""Checks on everything the client puts into a URL, a header or a query, made before any call.

A personCode or ticketId goes into the URL path: `../x` or `a/b?c` would address another
resource, so anything outside a strict alphabet is refused with `InvalidRequestError` (no
HTTP call, no quota spent). Values are still URL-quoted afterwards, as a second guard.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from urllib.parse import quote

from .errors import InvalidRequestError

__all__ = [
    "MAX_TAKE",
    "format_api_datetime",
    "quote_segment",
    "validate_changed_range",
    "validate_filename",
    "validate_person_code",
    "validate_query_text",
    "validate_record_id",
    "validate_take",
    "validate_tenant_id",
    "validate_ticket_id",
    "validate_valid_from",
]

MAX_TAKE = 1000

_PERSON_CODE = re.compile(r"[A-Za-z0-9._-]{1,32}")
_TICKET_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_RECORD_ID = re.compile(r"[A-Za-z0-9._-](?:[A-Za-z0-9._ -]{0,62}[A-Za-z0-9._-])?")
_TENANT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FILENAME = re.compile(r"[A-Za-z0-9 _\-.,$()]{1,255}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check(pattern: re.Pattern[str], value: object, what: str, rule: str) -> str:
    # re's [A-Za-z0-9] is ASCII-only, and fullmatch keeps a trailing newline out.
    if not isinstance(value, str) or not pattern.fullmatch(value) or value in {".", ".."}:
        raise InvalidRequestError(f"invalid {what} {value!r}: {rule}")
    return value


def validate_person_code(value: object) -> str:
    """A personCode safe to put in a path segment."""
    return _check(
        _PERSON_CODE,
        value,
        "personCode",
        "1-32 ASCII letters, digits, '-', '_' or '.', and not '.' or '..'",
    )


def validate_ticket_id(value: object) -> str:
    """A ticketId as the upload answer gives it (a UUID, or a short token)."""
    return _check(_TICKET_ID, value, "ticketId", "1-64 ASCII letters, digits or '-'")


def validate_record_id(value: object, what: str = "id") -> str:
    """An HR record id used in a path (a cost allocation id, which may hold inner spaces)."""
    return _check(
        _RECORD_ID,
        value,
        what,
        "1-64 ASCII letters, digits, '-', '_', '.' or inner spaces, not '.' or '..'",
    )


def validate_tenant_id(value: object) -> str:
    """A tenant id, sent in the X-Raet-Tenant-Id header and the token request."""
    return _check(_TENANT_ID, value, "tenant id", "1-64 ASCII letters, digits, '-' or '_'")


def validate_filename(value: object) -> str:
    """A file name the API accepts: letters, digits, space and `_ - . , $ ( )` only."""
    name = _check(
        _FILENAME,
        value,
        "filename",
        "1-255 ASCII letters, digits, spaces and _ - . , $ ( ) only",
    )
    if not name.strip(" ."):
        raise InvalidRequestError(f"invalid filename {value!r}: needs a letter or digit")
    return name


def validate_query_text(value: object, what: str) -> str:
    """A free-text filter (shortName, personId): non-empty, short, no control characters."""
    if not isinstance(value, str) or not value or len(value) > 256 or _CONTROL.search(value):
        raise InvalidRequestError(
            f"invalid {what} {value!r}: 1-256 characters, no control characters"
        )
    return value


def validate_take(value: object) -> int:
    """A page size for the HR readers: 1..1000 (the API's maximum)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TAKE:
        raise InvalidRequestError(f"invalid take {value!r}: an integer from 1 to {MAX_TAKE}")
    return value


def validate_valid_from(value: object) -> date | None:
    """A ValidFrom date, or None. A datetime is refused: its date depends on a time zone."""
    if value is None:
        return None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidRequestError(f"invalid valid_from {value!r}: a datetime.date or None")
    return value


def format_api_datetime(value: object, what: str = "datetime") -> str:
    """UTC `YYYY-MM-DDTHH:MM:SS.sssZ` as the HR filters want; a naive datetime is refused."""
    if not isinstance(value, datetime):
        raise InvalidRequestError(f"invalid {what} {value!r}: an aware datetime.datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequestError(f"invalid {what} {value!r}: naive datetimes are ambiguous")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def validate_changed_range(
    changed_after: datetime | None, changed_until: datetime | None
) -> dict[str, str]:
    """The changedAfter/changedUntil query parameters, checked and formatted."""
    params: dict[str, str] = {}
    if changed_after is not None:
        params["changedAfter"] = format_api_datetime(changed_after, "changed_after")
    if changed_until is not None:
        params["changedUntil"] = format_api_datetime(changed_until, "changed_until")
    if changed_after is not None and changed_until is not None and changed_after > changed_until:
        raise InvalidRequestError("changed_after is later than changed_until")
    return params


def quote_segment(value: str) -> str:
    """Percent-encode a validated value for a path segment; nothing is left as a separator."""
    return quote(value, safe="")
