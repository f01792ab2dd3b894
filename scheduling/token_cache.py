"""The fleet's token cache in the database: one token per tenant, fetched by one process.

The app may request 400 tokens a month. Every worker process on every machine reads the
token from the `token_cache` table; when it is missing or about to expire, exactly one of
them claims the fetch with a short lease (an atomic conditional UPDATE on
`fetching_until`), and the others wait for the token to appear or for the lease to lapse
(a fetcher that died), whichever is first. Implements `api_client.TokenCache`.

The token value lives in that table only: never in a log line, a job row or an event.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.engine import Engine

from api_client import AccessToken, TokenRefusal
from models import TokenCacheEntry, utcnow
from models.db import insert_if_missing
from scheduling import call_context
from scheduling.call_context import WorkerStopping
from scheduling.deferrals import CallDeferred
from scheduling.token_windows import TokenWindowClosed, take_grant

__all__ = [
    "DatabaseTokenCache",
    "RefusalRecord",
    "TokenWaitTimeout",
    "active_refusals",
    "forget_refusal",
]

log = logging.getLogger(__name__)

_table = TokenCacheEntry.__table__  # type: ignore[attr-defined]


class TokenWaitTimeout(CallDeferred):
    """Another process held the fetch for longer than we are willing to wait: a deferral
    (the job looks again shortly, no attempt spent), not an error of the job's."""


class DatabaseTokenCache:
    """`api_client.TokenCache` shared by every process that uses the same database."""

    def __init__(
        self,
        engine: Engine,
        owner: str,
        *,
        lease_seconds: float = 30.0,
        wait_timeout: float = 60.0,
        poll_interval: float = 0.05,
        clock: Callable[[], datetime] = utcnow,
        require_grant: bool = False,
    ) -> None:
        """`require_grant`: fetch a new token only against the pacer's grant for its tenant
        (`scheduling.token_windows`); the workers do, so no job spends the token budget
        unpaced. Without it (tools, tests) a fetch is made whenever one is needed."""
        self._engine = engine
        self.require_grant = require_grant
        self.owner = owner[:80]
        self.lease_seconds = lease_seconds
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self._clock = clock

    def __repr__(self) -> str:
        return f"DatabaseTokenCache(owner={self.owner!r})"

    def get_or_fetch(
        self, key: str, fetch: Callable[[], AccessToken], margin_seconds: float
    ) -> AccessToken:
        """The cached token if it outlives the margin; else one fetch for the whole fleet.

        A wait for another process's fetch ends after `wait_timeout`, at the step's last
        moment to start a call (`call_context`), or at once when this process stops.
        """
        self._ensure_row(key)
        wait = self.wait_timeout
        start_by = call_context.current().start_by
        if start_by is not None:
            wait = min(wait, max(0.0, (start_by - self._clock()).total_seconds()))
        deadline = time.monotonic() + wait
        while True:
            if call_context.stopping.is_set():
                raise WorkerStopping(self._clock())
            cached = self._read(key)
            if cached is not None and not cached.expires_within(margin_seconds, self._clock()):
                return cached
            claim = self._claim(key, margin_seconds)
            if claim is not None:
                self._take_grant(key, claim)
                return self._fetch_and_store(key, claim, fetch)
            if time.monotonic() >= deadline:
                raise TokenWaitTimeout(
                    self._clock() + timedelta(seconds=self.lease_seconds),
                    f"waited {wait:.0f}s for another process to fetch the token for {key}",
                )
            time.sleep(self.poll_interval)

    def _take_grant(self, key: str, claim: str) -> None:
        """With `require_grant`, take the tenant's grant for this fetch, or give the fetch
        lease back and defer: the tenant's work waits for its next delivery window."""
        if not self.require_grant:
            return
        tenant = key.rsplit("|", 1)[-1]
        now = self._clock()
        if take_grant(self._engine, tenant, now=now):
            return
        self._release(key, claim)
        raise TokenWindowClosed(
            now, f"no delivery window for tenant {tenant}: the token pacer has not granted one"
        )

    def invalidate(self, key: str, access_token: str) -> None:
        """Forget the token if it is still this one (a 401 said it is dead)."""
        with self._engine.begin() as connection:
            connection.execute(
                update(_table)
                .where(_table.c.cache_key == key, _table.c.access_token == access_token)
                .values(access_token=None, expires_at=None)
            )
        log.info("token for %s invalidated", key)

    def refusal(self, key: str) -> TokenRefusal | None:
        """The remembered refusal of credentials for key, if any."""
        with self._engine.begin() as connection:
            row = connection.execute(
                select(
                    _table.c.refused_at,
                    _table.c.refused_until,
                    _table.c.refused_reason,
                    _table.c.refused_credentials,
                    _table.c.refusals,
                ).where(_table.c.cache_key == key)
            ).first()
        if row is None or row.refused_at is None or row.refused_until is None:
            return None
        return TokenRefusal(
            reason=row.refused_reason or "",
            at=row.refused_at,
            retry_at=row.refused_until,
            credentials=row.refused_credentials or "",
            count=row.refusals,
        )

    def set_refusal(self, key: str, refusal: TokenRefusal | None) -> None:
        """Remember a refusal (the credentials' fingerprint, never the secret), or forget it."""
        self._ensure_row(key)
        values: dict[str, Any] = (
            _NO_REFUSAL
            if refusal is None
            else {
                "refused_at": refusal.at,
                "refused_until": refusal.retry_at,
                "refused_reason": refusal.reason[:255],
                "refused_credentials": refusal.credentials[:64],
                "refusals": refusal.count,
            }
        )
        with self._engine.begin() as connection:
            connection.execute(update(_table).where(_table.c.cache_key == key).values(values))

    def _ensure_row(self, key: str) -> None:
        """Insert the key's row if missing, so that claiming is always a plain UPDATE."""
        with self._engine.begin() as connection:
            insert_if_missing(connection, _table, {"cache_key": key})

    def _read(self, key: str) -> AccessToken | None:
        with self._engine.begin() as connection:
            row = connection.execute(
                select(
                    _table.c.access_token,
                    _table.c.token_type,
                    _table.c.scope,
                    _table.c.expires_at,
                ).where(_table.c.cache_key == key)
            ).first()
        if row is None or row.access_token is None or row.expires_at is None:
            return None
        return AccessToken(
            access_token=row.access_token,
            token_type=row.token_type or "Bearer",
            scope=row.scope or "",
            expires_at=row.expires_at,
        )

    def _claim(self, key: str, margin_seconds: float) -> str | None:
        """Take the fetch lease if nobody holds it and the token still needs fetching."""
        now = self._clock()
        claim = f"{self.owner}:{uuid.uuid4().hex}"
        still_needed = or_(
            _table.c.access_token.is_(None),
            _table.c.expires_at.is_(None),
            _table.c.expires_at <= now + timedelta(seconds=margin_seconds),
        )
        lease_free = or_(_table.c.fetching_until.is_(None), _table.c.fetching_until <= now)
        with self._engine.begin() as connection:
            result = connection.execute(
                update(_table)
                .where(and_(_table.c.cache_key == key, lease_free, still_needed))
                .values(fetching_until=now + timedelta(seconds=self.lease_seconds), fetcher=claim)
            )
        return claim if result.rowcount == 1 else None

    def _fetch_and_store(
        self, key: str, claim: str, fetch: Callable[[], AccessToken]
    ) -> AccessToken:
        try:
            token = fetch()
        except BaseException:
            self._release(key, claim)
            raise
        ours = _table.c.fetcher == claim
        with self._engine.begin() as connection:
            connection.execute(
                update(_table)
                .where(_table.c.cache_key == key)
                .values(
                    access_token=token.access_token,
                    token_type=token.token_type,
                    scope=token.scope,
                    expires_at=token.expires_at,
                    fetched_at=self._clock(),
                    fetching_until=case((ours, None), else_=_table.c.fetching_until),
                    fetcher=case((ours, None), else_=_table.c.fetcher),
                )
            )
        log.info("fetched a new token for %s (expires %s)", key, token.expires_at.isoformat())
        return token

    def _release(self, key: str, claim: str) -> None:
        """Give the lease back after a failed fetch, so a waiter may try at once."""
        with self._engine.begin() as connection:
            connection.execute(
                update(_table)
                .where(_table.c.cache_key == key, _table.c.fetcher == claim)
                .values(fetching_until=None, fetcher=None)
            )


# -- refusals, for the credentials hold and `yfdocs status` -------------------------------------

_NO_REFUSAL: dict[str, Any] = {
    "refused_at": None,
    "refused_until": None,
    "refused_reason": None,
    "refused_credentials": None,
    "refusals": 0,
}


@dataclass(frozen=True)
class RefusalRecord:
    """A remembered refusal of the app's credentials, for one cache key (token URL, client,
    tenant): the fleet does not ask the token endpoint again before `refused_until`."""

    cache_key: str
    reason: str
    refusals: int
    refused_until: datetime

    @property
    def tenant_id(self) -> str:
        return self.cache_key.rsplit("|", 1)[-1]


def active_refusals(
    engine: Engine, now: datetime, *, other_than: str | None = None
) -> list[RefusalRecord]:
    """Every refusal still in force at `now`; with `other_than`, only those made of other
    credentials than that fingerprint."""
    statement = select(
        _table.c.cache_key, _table.c.refused_reason, _table.c.refusals, _table.c.refused_until
    ).where(_table.c.refused_until > now)
    if other_than is not None:
        statement = statement.where(_table.c.refused_credentials != other_than)
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    return [
        RefusalRecord(row.cache_key, row.refused_reason or "", row.refusals, row.refused_until)
        for row in rows
    ]


def forget_refusal(engine: Engine, cache_key: str) -> None:
    """Forget the refusal remembered for `cache_key`: the next token request may go."""
    with engine.begin() as connection:
        connection.execute(
            update(_table).where(_table.c.cache_key == cache_key).values(_NO_REFUSAL)
        )
