"""The one error tree of the Youforce client, and the one function that builds its status branch.

::

    YouforceError                 every failure the client raises; carries status_code, body,
    |                             correlation_id, method, url, retryable, retry_after
    +-- InvalidRequestError       refused before any call (bad personCode, ticketId, arguments)
    +-- TransportError            no HTTP answer at all                      (retryable)
    |   +-- ConnectError          no connection made; the request never left (retryable)
    |   |   +-- ConnectTimeout    the connection was not made in time        (retryable)
    |   +-- ReadTimeout           sent, but no answer in time                (retryable)
    |   +-- ConnectionDropped     the server closed the connection or broke the protocol
    +-- APIStatusError            an HTTP answer that is not 2xx
    |   +-- BadRequestError       400 validation error
    |   +-- AuthenticationError   401 token missing, expired or revoked (after one refresh)
    |   |   +-- CredentialsRejectedError  the token endpoint refused the app's credentials
    |   +-- PermissionDeniedError 403 scope not granted
    |   +-- NotFoundError         404 not found, or not visible to this app
    |   +-- ConflictError         409                                        (retryable)
    |   +-- RateLimitError        429 quota or spike arrest; see retry_after (retryable)
    |   +-- ServerError           5xx                                        (retryable)
    |   +-- UnexpectedStatusError any other status (3xx, 405, 413, ...); 408 is retryable
    +-- ResponseFormatError       a 2xx whose body breaks the documented shape

`retryable` is a class default that a single exception may override; the worker, not the
client, decides when to retry (the client itself only refreshes a token once on a 401).
`TransportError.maybe_delivered` tells whether the server may have received the request: a
retried upload after a `ReadTimeout` can create a second ticket.

No exception ever holds a token, a client secret, the Authorization header or the token
request's form body: only what the server answered (truncated) and where it was sent. A
transport failure is raised with no `__cause__` or `__context__` (the HTTP library's
exception holds the prepared request); its class and message, scrubbed, are in `cause`.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import requests

__all__ = [
    "BODY_LIMIT",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionDropped",
    "CredentialsRejectedError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimitKind",
    "ReadTimeout",
    "ResponseFormatError",
    "ServerError",
    "TransportError",
    "UnexpectedStatusError",
    "YouforceError",
    "error_for_response",
    "parse_error_body",
    "parse_retry_after",
    "rate_limit_kind",
]

BODY_LIMIT = 2000
"""Characters of a response body kept on an exception: enough to read, not a memory risk."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def truncate_body(text: str | None, limit: int = BODY_LIMIT) -> str | None:
    """The body as kept on an exception: at most `limit` characters, marked when cut."""
    if text is None:
        return None
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters]"


class YouforceError(Exception):
    """Root of every error the client raises, so a caller can catch the client as a whole."""

    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        status_code: int | None = None,
        body: str | None = None,
        correlation_id: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        api_message: str | None = None,
        error_code: str | None = None,
    ) -> None:
        self.message = _one_line(message)
        self.method = method
        self.url = url
        self.status_code = status_code
        self.body = truncate_body(body)
        self.correlation_id = correlation_id
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        self.api_message = api_message
        self.error_code = error_code
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status_code={self.status_code!r},"
            f" method={self.method!r}, url={self.url!r}, correlation_id={self.correlation_id!r},"
            f" retryable={self.retryable!r}, retry_after={self.retry_after!r})"
        )


class InvalidRequestError(YouforceError, ValueError):
    """Arguments the API would refuse or that would be unsafe to send; no call was made."""


class TransportError(YouforceError):
    """No HTTP answer came back; the next attempt may well succeed.

    `cause` names the HTTP library's exception (class and message, secrets scrubbed); the
    exception itself is never chained, because it holds the prepared request, and with it
    the Authorization header or the token request's form body.
    """

    default_retryable = True
    maybe_delivered: ClassVar[bool] = True
    """Whether the server may have received (and acted on) the request."""

    def __init__(self, message: str, *, cause: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.cause = cause


class ConnectError(TransportError):
    """No connection could be made (refused, DNS, TLS); the request was never sent."""

    maybe_delivered = False


class ConnectTimeout(ConnectError):
    """The connection was not established within the connect timeout."""


class ReadTimeout(TransportError):
    """The request was sent but no answer came within the read timeout."""


class ConnectionDropped(TransportError):
    """The server closed the connection or broke HTTP before a full answer arrived."""


class APIStatusError(YouforceError):
    """The API answered with a status outside 2xx; `status_code` and `body` say what it was."""


class BadRequestError(APIStatusError):
    """400: the API refused this request as invalid; sending it again changes nothing."""


class AuthenticationError(APIStatusError):
    """401: credentials or token refused, even after one token refresh."""


class CredentialsRejectedError(AuthenticationError):
    """The token endpoint refused the app's client id and secret for a tenant.

    A configuration problem, not one job's: every call of that tenant would be refused
    too. `retry_at` (aware UTC) is when the fleet asks again with the same credentials;
    `from_memory` says the refusal was remembered and no request was made this time.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_at: datetime | None = None,
        from_memory: bool = False,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.retry_at = retry_at
        self.from_memory = from_memory

    @classmethod
    def from_answer(
        cls, error: APIStatusError, *, retry_at: datetime | None = None
    ) -> CredentialsRejectedError:
        """The refusal that `error` (the answer's status error) turns out to be."""
        return cls(
            error.message,
            retry_at=retry_at,
            method=error.method,
            url=error.url,
            status_code=error.status_code,
            body=error.body,
            correlation_id=error.correlation_id,
            api_message=error.api_message,
            error_code=error.error_code,
        )


class PermissionDeniedError(APIStatusError):
    """403: authenticated, but the app lacks the scope; permanent until scopes change."""


class NotFoundError(APIStatusError):
    """404: the item does not exist or is hidden from this app by its authorization filter."""


class ConflictError(APIStatusError):
    """409: the API reports a conflict that the vendor says to retry later."""

    default_retryable = True


RateLimitKind = Literal["spike", "parallel", "quota"]


def rate_limit_kind(error_code: str | None, message: str | None) -> RateLimitKind | None:
    """Which of the API's limits a 429 names, from the gateway's fault code or message.

    The gateway names the policy ("...SpikeArrestViolation", "...ConcurrentRatelimtViolation",
    "...QuotaViolation") and says it in words; the answer decides how long to wait: one call
    interval, until a call in flight ends, or until the quota day turns. None: not known.
    """
    text = f"{error_code or ''} {message or ''}".lower()
    if "spike" in text:
        return "spike"
    if "concurrent" in text or "parallel" in text:
        return "parallel"
    if "quota" in text:
        return "quota"
    return None


class RateLimitError(APIStatusError):
    """429: a usage limit was hit; wait (`retry_after` when the API sent one) and slow down."""

    default_retryable = True

    @property
    def limit(self) -> RateLimitKind | None:
        """The limit the API named: "spike", "parallel", "quota", or None when not said."""
        return rate_limit_kind(self.error_code, self.api_message)


class ServerError(APIStatusError):
    """5xx: the API failed; retry with backoff."""

    default_retryable = True


class UnexpectedStatusError(APIStatusError):
    """A status the API contract does not describe; kept so nothing is silently lost."""


class ResponseFormatError(YouforceError):
    """A success answer whose body is not the documented shape; the call may have worked."""


_STATUS_CLASSES: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}
_RETRYABLE_UNEXPECTED = frozenset({408, 425})


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The exception class for a status code (the table of the API reference, section 6)."""
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if 500 <= status_code <= 599:
        return ServerError
    return UnexpectedStatusError


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value (delta-seconds or HTTP date); None if absent
    or unreadable. A date in the past gives 0."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            return None
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.fromtimestamp(time.time(), UTC)
    return max(0.0, (when - current).total_seconds())


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def parse_error_body(payload: Any) -> dict[str, str | None]:
    """`message`, `correlation_id` and `error_code` from any of the documented error shapes.

    Shapes: nested `{"error": {...}}`, flat `{"message", "correlationId", ...}`, RFC 7807
    `{"title", "detail", "errors"}`, and the OAuth token endpoint's
    `{"error": "invalid_client", "error_description": ...}`.
    """
    found: dict[str, str | None] = {"message": None, "correlation_id": None, "error_code": None}
    if not isinstance(payload, dict):
        return found
    source: dict[str, Any] = payload
    nested = payload.get("error")
    if isinstance(nested, dict):
        source = nested
    elif isinstance(nested, str):
        found["error_code"] = _text(nested)
        found["message"] = _text(payload.get("error_description")) or _text(nested)
    found["message"] = (
        found["message"] or _text(source.get("message")) or _text(source.get("Message"))
    )
    found["correlation_id"] = (
        _text(source.get("correlationId"))
        or _text(payload.get("correlationId"))
        or _text(payload.get("traceId"))
    )
    found["error_code"] = found["error_code"] or _text(source.get("errorCode"))
    if found["message"] is None and ("title" in payload or "detail" in payload):
        pieces = [p for p in (_text(payload.get("title")), _text(payload.get("detail"))) if p]
        errors = payload.get("errors")
        if isinstance(errors, dict):
            for field, problems in errors.items():
                listed = problems if isinstance(problems, list) else [problems]
                pieces.append(f"{field}: " + "; ".join(str(p) for p in listed))
        elif isinstance(errors, list):
            pieces.extend(str(p) for p in errors)
        found["message"] = " - ".join(pieces) or None
    return found


def error_for_response(
    response: requests.Response, method: str | None = None, url: str | None = None
) -> APIStatusError:
    """THE mapping from a non-2xx answer to an exception of the status branch.

    `method` and `url` default to the request that produced the response. The exception keeps
    the response text (truncated), never the request, so the token request's form body and
    the Authorization header cannot leak through it.
    """
    status = response.status_code
    if method is None and response.request is not None:
        method = response.request.method
    if url is None:
        url = response.url
    try:
        text: str | None = response.text
    except Exception:  # an undecodable body still deserves a status error
        text = None
    payload: Any = None
    if text:
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
    details = parse_error_body(payload)
    correlation_id = details["correlation_id"] or response.headers.get("X-Correlation-Id")
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    cls = status_error_class(status)
    reason = response.reason or ""
    message = f"{method} {url} -> {status}"
    if reason:
        message += f" {reason}"
    api_message = details["message"]
    if api_message:
        message += f": {api_message}"
    if correlation_id:
        message += f" (correlationId={correlation_id})"
    retryable = True if status in _RETRYABLE_UNEXPECTED else None
    return cls(
        message,
        method=method,
        url=url,
        status_code=status,
        body=text,
        correlation_id=correlation_id,
        retryable=retryable,
        retry_after=retry_after,
        api_message=api_message,
        error_code=details["error_code"],
    )
