"""Opaque bearer tokens bound to (client, tenant), with lifetime, revocation and a budget."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

__all__ = ["IssuedToken", "TokenCheck", "TokenStore"]


class TokenCheck(Enum):
    """Why a presented token is (not) accepted; each maps to a 401 message."""

    VALID = "valid"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass
class IssuedToken:
    """One token as the sandbox remembers it; `number` names it in the request log."""

    value: str
    number: int
    client_id: str
    tenant_id: str
    scopes: tuple[str, ...]
    expires_at: float
    revoked: bool = False


def _month_key(epoch: float) -> tuple[int, int]:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.year, moment.month


class TokenStore:
    """Issues and checks tokens; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_value: dict[str, IssuedToken] = {}
        self._issued = 0
        self._budget_used: dict[tuple[str, tuple[int, int]], int] = {}

    def take_budget(self, client_id: str, now: float, budget: int | None) -> bool:
        """Count one token request against the app's monthly budget; False when spent."""
        key = (client_id, _month_key(now))
        with self._lock:
            used = self._budget_used.get(key, 0)
            if budget is not None and used >= budget:
                return False
            self._budget_used[key] = used + 1
            return True

    def issue(
        self, client_id: str, tenant_id: str, scopes: tuple[str, ...], now: float, lifetime: float
    ) -> IssuedToken:
        with self._lock:
            self._issued += 1
            token = IssuedToken(
                value=secrets.token_urlsafe(32),
                number=self._issued,
                client_id=client_id,
                tenant_id=tenant_id,
                scopes=scopes,
                expires_at=now + lifetime,
            )
            self._by_value[token.value] = token
            return token

    def check(self, value: str, now: float) -> tuple[TokenCheck, IssuedToken | None]:
        with self._lock:
            token = self._by_value.get(value)
        if token is None:
            return TokenCheck.UNKNOWN, None
        if token.revoked:
            return TokenCheck.REVOKED, token
        if now >= token.expires_at:
            return TokenCheck.EXPIRED, token
        return TokenCheck.VALID, token

    def revoke_all(self) -> int:
        """Invalidate every token issued so far; returns how many were still live."""
        with self._lock:
            live = [token for token in self._by_value.values() if not token.revoked]
            for token in live:
                token.revoked = True
            return len(live)

    def marker(self, authorization: str) -> str:
        """What the request log shows instead of an Authorization value."""
        scheme, _space, value = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return "<redacted>"
        with self._lock:
            token = self._by_value.get(value.strip())
        return f"Bearer <token#{token.number}>" if token else "Bearer <unknown-token>"

    def reset_budget(self) -> None:
        with self._lock:
            self._budget_used.clear()

    @property
    def issued_count(self) -> int:
        return self._issued

    def issued_values(self) -> list[str]:
        """Every token value issued so far (revoked ones included): what a test looks for
        where no token may appear."""
        with self._lock:
            return list(self._by_value)
