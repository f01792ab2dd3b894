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
from urllib.parse import urlsplit

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

__all__ = ["Timeouts", "logger", "new_session", "send"]

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


def _transport_error(
    exc: requests.RequestException, method: str, url: str
) -> TransportError | InvalidRequestError:
    where = f"{method} {url}"
    if isinstance(exc, requests.ConnectTimeout):
        return ConnectTimeout(f"{where}: connect timeout: {exc}", method=method, url=url)
    if isinstance(exc, requests.ReadTimeout):
        return ReadTimeout(f"{where}: read timeout: {exc}", method=method, url=url)
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidHeader,
        ),
    ):
        return InvalidRequestError(f"{where}: {exc}", method=method, url=url)
    if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError)):
        return ConnectError(f"{where}: cannot connect: {exc}", method=method, url=url)
    if isinstance(exc, requests.ConnectionError):
        reason: Any = exc.args[0] if exc.args else None
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        if isinstance(
            reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
        ):
            return ConnectError(f"{where}: cannot connect: {reason}", method=method, url=url)
        return ConnectionDropped(f"{where}: connection dropped: {exc}", method=method, url=url)
    if isinstance(
        exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
    ):
        return ConnectionDropped(f"{where}: answer cut off: {exc}", method=method, url=url)
    return TransportError(f"{where}: {type(exc).__name__}: {exc}", method=method, url=url)


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
    secret_request: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> requests.Response:
    """Make one HTTP call inside one governor slot and return whatever status came back.

    A transport failure becomes a `TransportError`. With `secret_request` (the token call) the
    requests exception is not chained, because it holds the prepared request and its form
    body with the client secret.
    """
    path = urlsplit(url).path
    with governor.slot(kind, tenant_id) as slot:
        started = clock()
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
            elapsed = clock() - started
            error = _transport_error(exc, method, url)
            if isinstance(error, TransportError):
                slot.record_response(None, None)
            logger.warning("%s %s -> %s after %.3fs", method, path, type(error).__name__, elapsed)
            if secret_request:
                raise error from None
            raise error from exc
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
