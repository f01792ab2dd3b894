"""One HTTP call: governor slot, timeout, no redirects, transport failures mapped, logged.

Everything the client sends goes through `send()`, so the rules of the design hold in one
place: every call has a (connect, read) timeout, every call is paced by the governor, no call
is retried here (urllib3 retries are off), and the log says method, path, status, elapsed
time and correlationId, never a header value or a body.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from .errors import (
    ConnectError,
    ConnectionDropped,
    ConnectTimeout,
    InvalidRequestError,
    RateLimitError,
    ReadTimeout,
    TransportError,
    error_for_response,
    parse_retry_after,
)
from .governor import RateGovernor
from .multipart import MultipartBody

__all__ = ["Timeouts", "logger", "new_session", "scrub", "secrets_in", "send"]

logger = logging.getLogger("api_client")


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a connection and for each read; requests has no default."""

    connect: float = 5.0
    read: float = 60.0

    def __post_init__(self) -> None:
        for name in ("connect", "read"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Timeouts.{name} must be a positive number, not {value!r}")

    def as_requests(self) -> tuple[float, float]:
        """The `timeout=` argument for requests."""
        return (float(self.connect), float(self.read))


def new_session(user_agent: str) -> requests.Session:
    """A session with urllib3 retries off, so a POST is never re-sent behind our back."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=urllib3.util.Retry(total=0, read=False, redirect=False))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    session.trust_env = True
    return session


_SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie")
_SECRET_FORM_WORDS = ("secret", "password", "token", "assertion")
_REDACTED = "<redacted>"


def secrets_in(
    headers: Mapping[str, str], data: Mapping[str, str] | MultipartBody | None
) -> tuple[str, ...]:
    """The values a failure message must never show: credentials in headers and form."""
    found: list[str] = []
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS and value:
            found.append(value)
            _scheme, _space, credential = value.partition(" ")
            if credential.strip():
                found.append(credential.strip())
    if isinstance(data, Mapping):
        for name, value in data.items():
            if value and any(word in name.lower() for word in _SECRET_FORM_WORDS):
                found.append(value)
    # Longest first, so a value is masked whole before any part of it could be.
    return tuple(sorted(set(found), key=len, reverse=True))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret value, and its URL-encoded form, masked."""
    for secret in secrets:
        text = text.replace(secret, _REDACTED).replace(quote_plus(secret), _REDACTED)
    return text


def _summary(exc: BaseException, secrets: tuple[str, ...]) -> str:
    kind = type(exc)
    return scrub(f"{kind.__module__}.{kind.__qualname__}: {exc}", secrets)


def _transport_error(
    exc: requests.RequestException, method: str, url: str, secrets: tuple[str, ...] = ()
) -> TransportError | InvalidRequestError:
    """Our exception for a requests exception, built from scrubbed text only.

    Nothing of `exc` is kept: it holds the prepared request (headers, body).
    """
    where = f"{method} {url}"
    cause = _summary(exc, secrets)
    text = scrub(str(exc), secrets)
    if isinstance(exc, requests.ConnectTimeout):
        return ConnectTimeout(
            f"{where}: connect timeout: {text}", method=method, url=url, cause=cause
        )
    if isinstance(exc, requests.ReadTimeout):
        return ReadTimeout(f"{where}: read timeout: {text}", method=method, url=url, cause=cause)
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidHeader,
        ),
    ):
        return InvalidRequestError(f"{where}: {text}", method=method, url=url)
    if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError)):
        return ConnectError(f"{where}: cannot connect: {text}", method=method, url=url, cause=cause)
    if isinstance(exc, requests.ConnectionError):
        reason: Any = exc.args[0] if exc.args else None
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        if isinstance(
            reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
        ):
            why = scrub(str(reason), secrets)
            return ConnectError(
                f"{where}: cannot connect: {why}", method=method, url=url, cause=cause
            )
        return ConnectionDropped(
            f"{where}: connection dropped: {text}", method=method, url=url, cause=cause
        )
    if isinstance(
        exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
    ):
        return ConnectionDropped(
            f"{where}: answer cut off: {text}", method=method, url=url, cause=cause
        )
    return TransportError(
        f"{where}: {type(exc).__name__}: {text}", method=method, url=url, cause=cause
    )


def send(
    session: requests.Session,
    governor: RateGovernor,
    *,
    kind: str,
    tenant_id: str,
    method: str,
    url: str,
    timeouts: Timeouts,
    headers: Mapping[str, str],
    params: Mapping[str, str | int] | None = None,
    data: Mapping[str, str] | MultipartBody | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> requests.Response:
    """Make one HTTP call inside one governor slot and return whatever status came back.

    A transport failure becomes a `TransportError`, raised after the `except` block so that
    it has neither a `__cause__` nor a `__context__`: the requests exception holds the
    prepared request, with the Authorization header or the token form's client secret.
    """
    path = urlsplit(url).path
    with governor.slot(kind, tenant_id) as slot:
        started = clock()
        failure: TransportError | InvalidRequestError | None = None
        try:
            response = session.request(
                method,
                url,
                headers=dict(headers),
                params=params,
                data=data,
                timeout=timeouts.as_requests(),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            failure = _transport_error(exc, method, url, secrets_in(headers, data))
        if failure is not None:
            elapsed = clock() - started
            if isinstance(failure, TransportError):
                slot.record_response(None, None)
            logger.warning("%s %s -> %s after %.3fs", method, path, type(failure).__name__, elapsed)
            raise failure
        elapsed = clock() - started
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        limit = None
        if response.status_code == 429:
            refused = error_for_response(response, method, url)
            limit = refused.limit if isinstance(refused, RateLimitError) else None
        slot.record_response(response.status_code, retry_after, limit)
    logger.info(
        "%s %s -> %s in %.3fs correlationId=%s",
        method,
        path,
        response.status_code,
        elapsed,
        response.headers.get("X-Correlation-Id"),
    )
    return response
