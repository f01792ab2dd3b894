"""The hook through which a rate governor paces every HTTP call the client makes.

The API's limits (3 parallel calls, one call per 0.6 s, 6,000 calls a day, 400 token
requests a month) hold for the whole fleet, so the pacing lives outside the client: the
client enters `governor.slot(kind, tenant_id)` around every single HTTP call, token calls
included, and reports the outcome on the slot. Slots are never nested, so a governor that
allows one call at a time cannot deadlock the client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal, Protocol

__all__ = ["CALL_KINDS", "CallKind", "CallSlot", "RateGovernor", "UnlimitedGovernor"]

CallKind = Literal["token", "upload", "status", "read"]
CALL_KINDS: frozenset[str] = frozenset({"token", "upload", "status", "read"})


class CallSlot(Protocol):
    """The permission for one HTTP call, told how the call went."""

    def record_response(
        self, status_code: int | None, retry_after: float | None, limit: str | None = None
    ) -> None:
        """`status_code` None means no HTTP answer (transport failure); a 429 should slow
        every caller, for `retry_after` seconds when the API said so. `limit` is the limit a
        429 named ("spike", "parallel", "quota"; see `errors.rate_limit_kind`), else None."""
        ...


class RateGovernor(Protocol):
    """Decides when a call may be made. `slot()` blocks until then, or raises (for example
    when the daily budget is spent); the client lets such an exception propagate."""

    def slot(self, kind: str, tenant_id: str) -> contextlib.AbstractContextManager[CallSlot]:
        """A context manager held for the duration of one HTTP call of this kind."""
        ...


class _NoOpSlot:
    def record_response(
        self, status_code: int | None, retry_after: float | None, limit: str | None = None
    ) -> None:
        """Nothing to learn without a limit."""


class UnlimitedGovernor:
    """No pacing at all: the default for a single process and for tests."""

    @contextlib.contextmanager
    def slot(self, kind: str, tenant_id: str) -> Iterator[CallSlot]:
        yield _NoOpSlot()

    def __repr__(self) -> str:
        return "UnlimitedGovernor()"
