"""Standard Webhooks (the Svix scheme; 360Learning and others): signed JSON deliveries.

Headers: `webhook-id` (the idempotency key: a resend carries the same one),
`webhook-timestamp` (Unix seconds, within `TOLERANCE` of now either way) and
`webhook-signature` (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, several
separated by spaces during a secret's rotation; one match is enough). The check itself is
the `standardwebhooks` package's.

The body is the Standard Webhooks envelope; the `data` fields are yfdocs's own (the LMSs
that use this scheme do not publish one shape for a completion):

    {"type": "user.certificate.awarded", "timestamp": "2026-11-30T14:02:11Z",
     "data": {"tenant_id": "4028868",
              "user": {"email": "jan.devries@example.nl", "employee_number": "191166"},
              "course": {"id": "42", "name": "BHV basis"},
              "completed_at": "2026-11-30T14:02:11Z",
              "certificate_url": "https://lms.example.nl/certificates/8812.pdf"}}

`user.person_code`, `document_type`, `description` and `valid_from` may be given too.
Types other than `ENQUEUED_TYPES` are acknowledged and ignored.
"""

from __future__ import annotations

import binascii
import json
import time
from collections.abc import Mapping
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from intake.callers import CallerNotAuthenticated, IntakeCaller
from intake.events import CompletionEvent, Ignored, MalformedDelivery, completion_date, text_at

__all__ = ["ENQUEUED_TYPES", "TOLERANCE_SECONDS", "event_from_delivery", "verify_delivery"]

ENQUEUED_TYPES = frozenset({"user.certificate.awarded", "course.completed"})
TOLERANCE_SECONDS = 300
SOURCE = "standard-webhooks"


def verify_delivery(
    caller: IntakeCaller, body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> str:
    """The delivery's `webhook-id` once its timestamp and signature are good.

    A timestamp outside the tolerance (a replay, or a clock far off) is refused before
    the signature is even looked at.
    """
    if caller.webhook_secret is None:
        raise CallerNotAuthenticated(
            f"the key {caller.name!r} has no webhook secret", "webhook-signature"
        )
    message_id = headers.get("webhook-id", "").strip()
    stamp = headers.get("webhook-timestamp", "").strip()
    if not message_id or not stamp or not headers.get("webhook-signature"):
        raise MalformedDelivery(
            "webhook-signature", "webhook-id, webhook-timestamp and webhook-signature are required"
        )
    if not stamp.isdigit():
        raise MalformedDelivery("webhook-timestamp", "webhook-timestamp must be Unix seconds")
    if abs((now if now is not None else time.time()) - int(stamp)) > TOLERANCE_SECONDS:
        raise MalformedDelivery(
            "webhook-timestamp",
            f"webhook-timestamp is more than {TOLERANCE_SECONDS} s from now: a replay, or a "
            "clock far off",
        )
    try:
        Webhook(caller.webhook_secret).verify(body, dict(headers), json_parse=False)
    except (WebhookVerificationError, ValueError, binascii.Error):
        # ValueError covers a body that is not UTF-8 and a signature without "v1,".
        raise CallerNotAuthenticated(
            "webhook-signature does not match this key's secret", "webhook-signature"
        ) from None
    return message_id


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MalformedDelivery("body", "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedDelivery("body", "the body is not a JSON object")
    return payload


def event_from_delivery(
    message_id: str, body: bytes, *, tenant_id: str | None = None
) -> CompletionEvent | Ignored:
    """The completion a verified delivery reports, or why it is ignored."""
    payload = _payload(body)
    kind = text_at(payload, "type")
    if kind not in ENQUEUED_TYPES:
        return Ignored(f"event type {kind!r} is not a completion")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise MalformedDelivery("data", "data must be a JSON object")
    completed = text_at(data, "completed_at") or text_at(payload, "timestamp")
    valid_from = text_at(data, "valid_from") or completion_date(completed, "data.completed_at")
    return CompletionEvent(
        source=SOURCE,
        event_key=f"webhook:{message_id}",
        tenant_id=text_at(data, "tenant_id") or tenant_id,
        person_code=text_at(data, "user", "person_code"),
        email=text_at(data, "user", "email"),
        employee_number=text_at(data, "user", "employee_number"),
        document_type=text_at(data, "document_type") or "certificate",
        description=text_at(data, "description"),
        valid_from=valid_from,
        certificate_url=text_at(data, "certificate_url"),
        course_name=text_at(data, "course", "name"),
    )
