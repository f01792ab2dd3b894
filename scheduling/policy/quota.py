"""Who gets the last calls of the day: tickets already uploaded, then live events, then backfill.

Every uploaded ticket needs at least one more call (its status) to finish, so an upload
that would eat into those calls waits for the next quota window; a backfill upload also
leaves room for the live events that are waiting. The rule as a pure function of the
counts; `scheduling.quota_policy` reads them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

__all__ = ["UploadWait", "upload_wait"]

LIVE_PRIORITY = 0  # models.Priority.LIVE; the policy speaks numbers to stay pure
# What a live document costs to deliver: its upload and, as the poll planner aims, about
# 1.2 status calls.
CALLS_PER_LIVE_DOCUMENT = 2.2


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
    live_expected_later: float = 0.0,
) -> UploadWait | None:
    """None if an upload of `priority` may spend a call now, else until when it waits.

    `polling_tickets` is how many uploaded tickets still need a status call;
    `waiting_before` how many queued jobs of a more urgent priority wait, and
    `live_expected_later` how many live documents are still to come before the quota
    window ends (both counted only for backfill, which leaves each of them the calls a live
    document costs: a backfill must not spend in an hour the calls the day's live events
    will need).
    """
    reserved = polling_tickets
    if priority > LIVE_PRIORITY:
        reserved += math.ceil(CALLS_PER_LIVE_DOCUMENT * (waiting_before + live_expected_later))
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
