"""Who gets the last calls of the day: tickets already uploaded, then live events, then backfill.

Every uploaded ticket needs at least one more call (its status) to finish, so an upload
that would eat into those calls waits for the next quota window; a backfill upload also
leaves room for the live events that are waiting. The rule as a pure function of the
counts; `scheduling.quota_policy` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["UploadWait", "upload_wait"]

LIVE_PRIORITY = 0  # models.Priority.LIVE; the policy speaks numbers to stay pure


@dataclass(frozen=True)
class UploadWait:
    """An upload that must wait for the next quota window, and why."""

    until: datetime
    reason: str


def upload_wait(
    *,
    priority: int,
    quota_left: int,
    polling_tickets: int,
    waiting_before: int,
    resets_at: datetime,
) -> UploadWait | None:
    """None if an upload of `priority` may spend a call now, else until when it waits.

    `polling_tickets` is how many uploaded tickets still need a status call;
    `waiting_before` how many queued jobs of a more urgent priority wait (counted only for
    backfill, which leaves room for them).
    """
    reserved = polling_tickets + (waiting_before if priority > LIVE_PRIORITY else 0)
    if quota_left > reserved:
        return None
    whom = "uploaded tickets" if priority <= LIVE_PRIORITY else "uploaded tickets and live events"
    return UploadWait(
        until=resets_at,
        reason=(
            f"daily API quota nearly spent ({quota_left} calls left, {reserved} kept for "
            f"{whom}); waiting for the next window"
        ),
    )
