"""Delivery windows: which tenants hold a token now, and the pacer's grants for new ones.

A token serves one tenant for its lifetime; while it is valid the tenant's *window* is open
and its work may run. A new token is requested only against a *grant* (table
`token_grants`, owned by this module): the dispatcher writes one when the pacer allows
(`scheduling.policy.pacing`) and the tenant's work is the most urgent, and the fleet's
token cache takes it when it fetches. A grant not taken lapses after `GRANT_SECONDS`.
Without a grant the token cache does not fetch: the job waits for its tenant's next window
(`TokenWindowClosed`, a deferral), so no path spends the month's token budget unpaced.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from config import Settings
from models import TokenCacheEntry
from models.tables import TokenGrant
from scheduling.deferrals import CallDeferred
from scheduling.ledger import count_calls
from scheduling.policy.pacing import TokenPace
from scheduling.policy.windows import budget_window

__all__ = [
    "GRANT_SECONDS",
    "TokenWindowClosed",
    "WindowGrant",
    "grant_window",
    "open_windows",
    "outstanding_grants",
    "take_grant",
    "token_pace",
]

_grants = TokenGrant.__table__  # type: ignore[attr-defined]
_cache = TokenCacheEntry.__table__  # type: ignore[attr-defined]

# How long a grant waits to be taken: long enough for a worker to claim the tenant's job.
GRANT_SECONDS = 120.0


class TokenWindowClosed(CallDeferred):
    """The tenant has no valid token and no grant for a new one: its work waits for the
    next delivery window the pacer opens (a deferral, no attempt spent)."""


@dataclass(frozen=True)
class WindowGrant:
    """A grant just written: the tenant may fetch one token until `grant_until`."""

    tenant_id: str
    grant_until: datetime


def _tenant_of(cache_key: str) -> str:
    return cache_key.rsplit("|", 1)[-1]


def open_windows(engine: Engine, *, now: datetime, margin_seconds: float) -> dict[str, datetime]:
    """The tenants whose token outlives `margin_seconds` from now, with when it expires."""
    horizon = now + timedelta(seconds=margin_seconds)
    with engine.connect() as connection:
        rows = connection.execute(
            select(_cache.c.cache_key, _cache.c.expires_at).where(
                _cache.c.access_token.is_not(None), _cache.c.expires_at > horizon
            )
        ).all()
    windows: dict[str, datetime] = {}
    for key, expires_at in rows:
        tenant = _tenant_of(key)
        windows[tenant] = max(expires_at, windows.get(tenant, expires_at))
    return windows


def outstanding_grants(connection: Connection, now: datetime) -> dict[str, datetime]:
    """Grants written and not yet taken, by tenant, with when each lapses."""
    rows = connection.execute(
        select(_grants.c.tenant_id, _grants.c.grant_until).where(
            _grants.c.used_at.is_(None), _grants.c.grant_until > now
        )
    ).all()
    return {tenant: until for tenant, until in rows}


def token_pace(connection: Connection, settings: Settings, now: datetime) -> TokenPace:
    """The budget window as the pacer sees it: requests made, plus grants not yet taken."""
    start, end = budget_window(now, settings.quota_timezone, settings.token_budget_window)
    used = count_calls(connection, start, end, tokens=True)
    pending = int(
        connection.execute(
            select(func.count())
            .select_from(_grants)
            .where(_grants.c.used_at.is_(None), _grants.c.grant_until > now)
        ).scalar_one()
    )
    return TokenPace(
        budget=settings.token_monthly_budget,
        used=used + pending,
        reserve_fraction=settings.token_reserve,
        window_start=start,
        window_end=end,
        now=now,
    )


def grant_window(
    engine: Engine, settings: Settings, tenant_id: str, *, live: bool, now: datetime, reason: str
) -> WindowGrant | None:
    """Grant the tenant one token request if the pace allows it now; None if it does not,
    or if the tenant already holds a grant not taken. One transaction: two dispatchers
    racing (there should be one) cannot both grant past the pace."""
    with engine.begin() as connection:
        pace = token_pace(connection, settings, now)
        if not pace.allows(live=live):
            return None
        until = now + timedelta(seconds=GRANT_SECONDS)
        updated = connection.execute(
            update(_grants)
            .where(
                _grants.c.tenant_id == tenant_id,
                or_(_grants.c.used_at.is_not(None), _grants.c.grant_until <= now),
            )
            .values(granted_at=now, grant_until=until, used_at=None, reason=reason[:255])
        )
        if updated.rowcount == 0:
            exists = connection.execute(
                select(_grants.c.tenant_id).where(_grants.c.tenant_id == tenant_id)
            ).first()
            if exists is not None:
                return None  # a grant is outstanding already
            with contextlib.suppress(IntegrityError), connection.begin_nested():
                connection.execute(
                    insert(_grants).values(
                        tenant_id=tenant_id,
                        granted_at=now,
                        grant_until=until,
                        used_at=None,
                        reason=reason[:255],
                    )
                )
    return WindowGrant(tenant_id, until)


def take_grant(engine: Engine, tenant_id: str, *, now: datetime) -> bool:
    """Take the tenant's grant for the token about to be fetched; False if there is none."""
    with engine.begin() as connection:
        taken = connection.execute(
            update(_grants)
            .where(
                and_(
                    _grants.c.tenant_id == tenant_id,
                    _grants.c.used_at.is_(None),
                    _grants.c.grant_until > now,
                )
            )
            .values(used_at=now)
        )
    return bool(taken.rowcount)
