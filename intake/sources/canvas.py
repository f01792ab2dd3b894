"""Canvas LMS Live Events: `course_completed`, delivered over HTTPS.

With "Sign Payload" on, the body is an RS256 JWT whose claims are the event; its `kid` is
looked up in Canvas's JWKS (`YFDOCS_CANVAS_JWKS_URL`, fetched and cached by PyJWT's
`PyJWKClient`, which fetches again for a `kid` it does not know, as a monthly rotation
needs). Canvas signs every institution's events with the same keys, so a signed event is
taken only from a root account the caller names (`metadata.root_account_uuid`, key option
`--canvas-account`). An unsigned body (JSON) must come with the caller's own key
(`Authorization: Bearer`), from a relay for instance.

    {"metadata": {"event_name": "course_completed", "user_sis_id": "191166",
                  "user_login": "jan.devries", "root_account_uuid": "...", ...},
     "body": {"course": {"id": "21070000000000042", "name": "BHV basis"},
              "progress": {"completed_at": "2026-11-30T14:02:11Z", ...},
              "user": {"id": "21070000000000123", "email": "jan.devries@example.nl"}}}

- The learner: `body.user.email`, `metadata.user_sis_id` (the employee number), and
  `metadata.user_login` (an e-mail address when it is one, else an employee number).
- There is no PDF in the event. The certificate is `body.certificate_url` when a relay
  adds one, else `YFDOCS_CANVAS_CERTIFICATE_URL` with its placeholders filled in
  (`CERTIFICATE_URL_FIELDS`, each value percent-encoded).
- Canvas sends the event again when the completion time changes, and retries deliveries:
  the key is the business key (user, course, completed_at), so the same completion is one
  job whatever its delivery, and a changed completion time is a new completion.
"""

from __future__ import annotations

import json
from string import Formatter
from typing import Any
from urllib.parse import quote

import jwt
from jwt import PyJWKClient

from intake.callers import CallerNotAuthenticated, IntakeCaller, TenantNotPermitted
from intake.events import (
    CompletionEvent,
    Ignored,
    MalformedDelivery,
    NoCertificate,
    business_key,
    completion_date,
    text_at,
)
from models.errors import Decision, YfdocsError

__all__ = [
    "CERTIFICATE_URL_FIELDS",
    "CanvasKeysUnavailable",
    "certificate_url_fields",
    "check_certificate_url_template",
    "decode_canvas_body",
    "event_from_canvas",
]

SOURCE = "canvas"
CERTIFICATE_URL_FIELDS = frozenset(
    {"course_id", "course_sis_id", "user_id", "user_sis_id", "user_login"}
)


class CanvasKeysUnavailable(YfdocsError):
    """Canvas's JWKS could not be fetched just now: the intake answers 503."""

    decision = Decision.RETRY


def certificate_url_fields(template: str) -> set[str]:
    """The placeholders a certificate URL template uses (ValueError for a broken one)."""
    return {name for _text, name, _spec, _conv in Formatter().parse(template) if name is not None}


def check_certificate_url_template(template: str) -> None:
    """ValueError, in one line, for a template the intake could not fill in (checked at
    start, so a typo stops `yfdocs intake`, not every Canvas event)."""
    if not template.lower().startswith("https://"):
        raise ValueError("YFDOCS_CANVAS_CERTIFICATE_URL must be an https:// URL")
    unknown = certificate_url_fields(template) - CERTIFICATE_URL_FIELDS
    if unknown:
        raise ValueError(
            f"YFDOCS_CANVAS_CERTIFICATE_URL uses {sorted(unknown)}; the placeholders are "
            f"{sorted(CERTIFICATE_URL_FIELDS)}"
        )


def decode_canvas_body(
    body: bytes, keys: PyJWKClient | None, caller: IntakeCaller
) -> tuple[dict[str, Any], bool]:
    """The event, and whether it was signed (and its signature and account checked)."""
    text = body.strip()
    if text.startswith(b"{"):
        try:
            event = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MalformedDelivery("body", "the body is not JSON") from None
        if not isinstance(event, dict):
            raise MalformedDelivery("body", "the body is not a JSON object")
        return event, False
    if keys is None:
        raise CallerNotAuthenticated("signed Canvas events need YFDOCS_CANVAS_JWKS_URL", "body")
    try:
        token = text.decode("ascii")
        signing_key = keys.get_signing_key_from_jwt(token)
        claims = jwt.decode(token, signing_key.key, algorithms=["RS256"])
    except jwt.PyJWKClientConnectionError:
        raise CanvasKeysUnavailable("Canvas's JWKS cannot be fetched just now") from None
    except (jwt.PyJWTError, UnicodeDecodeError, ValueError):
        raise CallerNotAuthenticated(
            "the Canvas event's signature does not verify", "body"
        ) from None
    if not isinstance(claims, dict):
        raise MalformedDelivery("body", "the signed event is not a JSON object")
    account = text_at(claims, "metadata", "root_account_uuid")
    if account is None or account not in caller.canvas_accounts:
        raise TenantNotPermitted(
            "metadata.root_account_uuid",
            f"this key does not take Canvas events of root account {account!r}",
        )
    return claims, True


def _certificate_url(
    values: dict[str, str | None], event: dict[str, Any], template: str | None
) -> str:
    given = text_at(event, "body", "certificate_url")
    if given is not None:
        return given
    if template is None:
        raise NoCertificate(
            "certificate_url",
            "the Canvas event names no certificate_url, and YFDOCS_CANVAS_CERTIFICATE_URL "
            "is not set",
        )
    needed = certificate_url_fields(template)
    missing = sorted(name for name in needed if not values.get(name))
    if missing:
        raise NoCertificate(
            "certificate_url",
            f"the certificate URL needs {', '.join(missing)}, which the event does not give",
        )
    return template.format_map({name: quote(values[name] or "", safe="") for name in needed})


def event_from_canvas(
    event: dict[str, Any], *, certificate_url_template: str | None, tenant_id: str | None = None
) -> CompletionEvent | Ignored:
    """The completion a `course_completed` event reports, or why the event is ignored."""
    name = text_at(event, "metadata", "event_name")
    if name != "course_completed":
        return Ignored(f"Canvas event {name!r} is not course_completed")
    completed_at = text_at(event, "body", "progress", "completed_at")
    if completed_at is None:
        raise MalformedDelivery(
            "body.progress.completed_at", "course_completed has no completed_at"
        )
    login = text_at(event, "metadata", "user_login")
    email = text_at(event, "body", "user", "email") or (login if login and "@" in login else None)
    sis_id = text_at(event, "metadata", "user_sis_id")
    employee_number = sis_id or (login if login and "@" not in login else None)
    values = {
        "course_id": text_at(event, "body", "course", "id"),
        "course_sis_id": text_at(event, "body", "course", "sis_source_id"),
        "user_id": text_at(event, "body", "user", "id") or text_at(event, "metadata", "user_id"),
        "user_sis_id": sis_id,
        "user_login": login,
    }
    if values["course_id"] is None or values["user_id"] is None:
        raise MalformedDelivery("body", "course_completed needs body.course.id and body.user.id")
    return CompletionEvent(
        source=SOURCE,
        event_key=business_key("canvas", values["user_id"], values["course_id"], completed_at),
        tenant_id=tenant_id,
        email=email,
        employee_number=employee_number,
        valid_from=completion_date(completed_at, "body.progress.completed_at"),
        certificate_url=_certificate_url(values, event, certificate_url_template),
        course_name=text_at(event, "body", "course", "name"),
    )
