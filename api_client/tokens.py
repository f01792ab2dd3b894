"""OAuth2 client-credentials tokens, per tenant, shared through a cache.

The app may fetch only 400 tokens a month, so a token is fetched when a call needs one and
the cached one expires within the margin, never on a timer and never per process: the
`TokenCache` protocol lets the whole fleet share one token per tenant (a database
implementation lives outside this package); `InMemoryTokenCache` serves one process.

A refusal of the credentials is remembered in the same cache (`TokenRefusal`): with the
same client id and secret the fleet asks again only after a wait that doubles with each
refusal, so a wrong secret cannot spend the monthly budget; a process with other
credentials (a fingerprint, never the secret) asks at once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import requests

from .errors import CredentialsRejectedError, ResponseFormatError, error_for_response
from .governor import RateGovernor
from .transport import Timeouts, logger, send
from .validation import validate_tenant_id

__all__ = [
    "AccessToken",
    "InMemoryTokenCache",
    "TokenCache",
    "TokenProvider",
    "TokenRefusal",
    "credentials_fingerprint",
    "token_cache_key",
    "utc_now",
]

_TOKEN_TYPES = {"bearer", "bearertoken"}
# OAuth2 answers of a token endpoint that refuse the client itself, not the request's form.
_CREDENTIAL_ERRORS = {"invalid_client", "unauthorized_client"}
_SECRET_FIELDS = ("access_token", "refresh_token", "id_token")


def utc_now() -> datetime:
    """The current time, aware and in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class AccessToken:
    """A bearer token for one tenant. The token itself never appears in repr or str."""

    access_token: str = field(repr=False)
    token_type: str
    scope: str
    expires_at: datetime

    def __post_init__(self) -> None:
        if self.expires_at.tzinfo is None:
            raise ValueError("AccessToken.expires_at must be an aware datetime")

    def expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        """True if the token is dead, or will be within `seconds` from `now`."""
        current = now if now is not None else utc_now()
        return self.expires_at - current <= timedelta(seconds=seconds)

    @property
    def authorization(self) -> str:
        """The Authorization header value."""
        return f"Bearer {self.access_token}"


@dataclass(frozen=True)
class TokenRefusal:
    """The token endpoint refused these credentials (by fingerprint) at `at`; the fleet
    asks again with them at `retry_at`. `count` refusals in a row so far."""

    reason: str
    at: datetime
    retry_at: datetime
    credentials: str
    count: int = 1


def credentials_fingerprint(client_id: str, client_secret: str) -> str:
    """A short digest that tells two sets of credentials apart without holding the secret."""
    digest = hashlib.sha256(f"{client_id}\0{client_secret}".encode()).hexdigest()
    return digest[:16]


class TokenCache(Protocol):
    """Where tokens live between calls; shared by the fleet in production."""

    def get_or_fetch(
        self, key: str, fetch: Callable[[], AccessToken], margin_seconds: float
    ) -> AccessToken:
        """Cached token for key if valid for more than margin_seconds; else call fetch() once
        (other callers wait, no stampede) and store it."""
        ...

    def invalidate(self, key: str, access_token: str) -> None:
        """Drop the cached token for key if it is still this one (a 401 said it is dead)."""
        ...

    def refusal(self, key: str) -> TokenRefusal | None:
        """The last refusal of credentials for key, if one is remembered."""
        ...

    def set_refusal(self, key: str, refusal: TokenRefusal | None) -> None:
        """Remember a refusal for key, or forget it (None) after a token was issued."""
        ...


class InMemoryTokenCache:
    """A thread-safe cache for one process; a lock per key so N threads fetch once."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._tokens: dict[str, AccessToken] = {}
        self._refusals: dict[str, TokenRefusal] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get_or_fetch(
        self, key: str, fetch: Callable[[], AccessToken], margin_seconds: float
    ) -> AccessToken:
        with self._lock_for(key):
            cached = self._tokens.get(key)
            if cached is not None and not cached.expires_within(margin_seconds, self._clock()):
                return cached
            token = fetch()
            self._tokens[key] = token
            return token

    def invalidate(self, key: str, access_token: str) -> None:
        with self._lock_for(key):
            cached = self._tokens.get(key)
            if cached is not None and cached.access_token == access_token:
                del self._tokens[key]

    def refusal(self, key: str) -> TokenRefusal | None:
        with self._guard:
            return self._refusals.get(key)

    def set_refusal(self, key: str, refusal: TokenRefusal | None) -> None:
        with self._guard:
            if refusal is None:
                self._refusals.pop(key, None)
            else:
                self._refusals[key] = refusal

    def __repr__(self) -> str:
        return f"InMemoryTokenCache(keys={len(self._tokens)})"


def token_cache_key(token_url: str, client_id: str, tenant_id: str) -> str:
    """The cache key of a tenant's token: endpoint, app and tenant, never the secret."""
    return f"{token_url}|{client_id}|{tenant_id}"


def _redacted(text: str) -> str:
    """A token answer as it may be kept on an exception: secret fields masked."""
    try:
        payload = json.loads(text)
    except ValueError:
        return "<unreadable token answer withheld>"
    if isinstance(payload, dict):
        for name in _SECRET_FIELDS:
            if name in payload:
                payload[name] = "***"
        return json.dumps(payload)
    return "<token answer withheld>"


def _expires_in(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    if not 0 < seconds < 10 * 365 * 86400:
        return None
    return seconds


def _parse_token_answer(text: str) -> tuple[str, str, str, float] | str:
    """(access_token, token_type, scope, lifetime) from a token answer, or what is wrong."""
    try:
        payload = json.loads(text)
    except ValueError:
        return "is not JSON"
    if not isinstance(payload, dict):
        return "is not a JSON object"
    access_token = payload.get("access_token")
    token_type = payload.get("token_type")
    scope = payload.get("scope")
    lifetime = _expires_in(payload.get("expires_in"))
    if not isinstance(access_token, str) or not access_token.strip():
        return "has no access_token"
    if not isinstance(token_type, str) or token_type.lower() not in _TOKEN_TYPES:
        return f"has token_type {token_type!r}, not Bearer"
    if lifetime is None:
        return f"has expires_in {payload.get('expires_in')!r}, not a positive number"
    if scope is not None and not isinstance(scope, str):
        return "has a scope that is not a string"
    return access_token, token_type, scope or "", lifetime


class TokenProvider:
    """Gets a tenant's token from the cache, or from the token endpoint when it must."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        cache: TokenCache,
        session: requests.Session,
        timeouts: Timeouts,
        governor: RateGovernor,
        margin_seconds: float = 300,
        clock: Callable[[], datetime] = utc_now,
        user_agent: str | None = None,
        refusal_wait: float = 900.0,
        refusal_wait_cap: float = 86400.0,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("client_id and client_secret are required")
        if margin_seconds < 0:
            raise ValueError("margin_seconds must not be negative")
        if not 0 < refusal_wait <= refusal_wait_cap:
            raise ValueError("need 0 < refusal_wait <= refusal_wait_cap")
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self._cache = cache
        self._session = session
        self._timeouts = timeouts
        self._governor = governor
        self.margin_seconds = float(margin_seconds)
        self._clock = clock
        self._user_agent = user_agent
        self._shortest_lifetime: float | None = None
        self.refusal_wait = refusal_wait
        self.refusal_wait_cap = refusal_wait_cap
        self.credentials = credentials_fingerprint(client_id, client_secret)

    def __repr__(self) -> str:
        return f"TokenProvider(token_url={self.token_url!r}, client_id={self.client_id!r})"

    def _margin(self) -> float:
        # A token that lives shorter than the margin would be refetched on every call and
        # burn the monthly budget; never ask for more than half of a lifetime we have seen.
        if self._shortest_lifetime is None:
            return self.margin_seconds
        return min(self.margin_seconds, self._shortest_lifetime / 2)

    def cache_key(self, tenant_id: str) -> str:
        """The key under which this tenant's token is cached."""
        return token_cache_key(self.token_url, self.client_id, tenant_id)

    def token(self, tenant_id: str) -> AccessToken:
        """A token for the tenant, valid for more than the margin (or freshly fetched)."""
        validate_tenant_id(tenant_id)
        key = self.cache_key(tenant_id)
        return self._cache.get_or_fetch(
            key, lambda: self._fetch_unless_refused(key, tenant_id), self._margin()
        )

    def _fetch_unless_refused(self, key: str, tenant_id: str) -> AccessToken:
        """Fetch, unless these credentials were refused and their wait is not over.

        Runs only in the one caller that holds the cache's fetch claim, and the previous
        holder recorded its refusal before giving the claim up: so a refusal costs the
        fleet one token request per wait, however many processes want a token.
        """
        refusal = self._cache.refusal(key)
        ours = refusal if refusal is not None and refusal.credentials == self.credentials else None
        now = self._clock()
        if ours is not None and ours.retry_at > now:
            raise CredentialsRejectedError(
                f"the token endpoint refused these credentials for tenant {tenant_id} "
                f"({ours.count}x, last at {ours.at:%Y-%m-%d %H:%M:%S}Z: {ours.reason}); "
                f"not asking again before {ours.retry_at:%Y-%m-%d %H:%M:%S}Z",
                url=self.token_url,
                method="POST",
                retry_at=ours.retry_at,
                from_memory=True,
            )
        try:
            token = self._fetch(tenant_id)
        except CredentialsRejectedError as exc:
            reason = exc.api_message or exc.error_code or f"HTTP {exc.status_code}"
            exc.retry_at = self.remember_refusal(tenant_id, reason)
            raise
        if refusal is not None:
            self._cache.set_refusal(key, None)
        return token

    def remember_refusal(self, tenant_id: str, reason: str) -> datetime:
        """Record that these credentials were refused for the tenant (by the token endpoint,
        or by the API for a token just issued); returns when the fleet may ask again."""
        key = self.cache_key(tenant_id)
        previous = self._cache.refusal(key)
        count = previous.count + 1 if previous and previous.credentials == self.credentials else 1
        now = self._clock()
        retry_at = now + timedelta(
            seconds=min(self.refusal_wait * 2 ** (count - 1), self.refusal_wait_cap)
        )
        self._cache.set_refusal(
            key, TokenRefusal(reason[:200], now, retry_at, self.credentials, count)
        )
        logger.error(
            "the credentials were refused for tenant %s (%s); no new token before %s, "
            "or at once with new credentials",
            tenant_id,
            reason,
            retry_at.isoformat(),
        )
        return retry_at

    def invalidate(self, tenant_id: str, token: AccessToken) -> None:
        """Forget the token (the API refused it) unless another caller replaced it already."""
        self._cache.invalidate(self.cache_key(tenant_id), token.access_token)

    def _fetch(self, tenant_id: str) -> AccessToken:
        method, url = "POST", self.token_url
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "tenant_id": tenant_id,
        }
        headers = {"Cache-Control": "no-cache", "Accept": "application/json"}
        if self._user_agent:
            headers["User-Agent"] = self._user_agent
        # The lifetime counts from before the request, so the token never outlives our view.
        requested_at = self._clock()
        response = send(
            self._session,
            self._governor,
            kind="token",
            tenant_id=tenant_id,
            method=method,
            url=url,
            timeouts=self._timeouts,
            headers=headers,
            data=form,
        )
        if not 200 <= response.status_code <= 299:
            error = error_for_response(response, method, url)
            if response.status_code in (401, 403) or error.error_code in _CREDENTIAL_ERRORS:
                raise CredentialsRejectedError.from_answer(error)
            raise error
        text = response.text
        parsed = _parse_token_answer(text)
        if isinstance(parsed, str):
            raise ResponseFormatError(
                f"{method} {url} -> {response.status_code}: token answer {parsed}",
                method=method,
                url=url,
                status_code=response.status_code,
                body=_redacted(text),
                correlation_id=response.headers.get("X-Correlation-Id"),
            )
        access_token, token_type, scope, lifetime = parsed
        if lifetime <= self.margin_seconds:
            logger.warning(
                "token lifetime %.0fs is not longer than the refresh margin %.0fs",
                lifetime,
                self.margin_seconds,
            )
        if self._shortest_lifetime is None or lifetime < self._shortest_lifetime:
            self._shortest_lifetime = lifetime
        logger.info("fetched a token for tenant %s, valid %.0fs", tenant_id, lifetime)
        return AccessToken(
            access_token=access_token,
            token_type=token_type,
            scope=scope,
            expires_at=requested_at + timedelta(seconds=lifetime),
        )
