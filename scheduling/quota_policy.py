"""Who gets the last calls of the day: tickets already uploaded, then live events, then backfill.

Every uploaded ticket needs at least one more call (its status) to finish, so an upload
that would eat into those calls waits for the next quota window; a backfill upload also
leaves room for the live events that are waiting. Plain functions over the ledger and the
job table, so that the rule is tested without a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from config import Settings
from models import JobState, Priority, UploadJob
from scheduling.governor import calls_in_quota_window

__all__ = ["UploadWait", "upload_must_wait"]


@dataclass(frozen=True)
class UploadWait:
    """An upload that must wait for the next quota window, and why."""

    until: datetime
    reason: str


def _count(session: Session, *conditions: object) -> int:
    statement = select(func.count()).select_from(UploadJob).where(*conditions)  # type: ignore[arg-type]
    return int(session.exec(statement).one())


def upload_must_wait(
    engine: Engine, settings: Settings, *, priority: int, now: datetime
) -> UploadWait | None:
    """None if an upload of this priority may spend a call now, else until when it waits."""
    calls, resets_at = calls_in_quota_window(
        engine,
        now=now,
        quota_timezone=settings.quota_timezone,
        quota_window_seconds=settings.quota_window,
    )
    quota_left = max(0, settings.daily_quota - calls)
    with Session(engine) as session:
        reserved = _count(session, col(UploadJob.state) == JobState.POLLING.value)
        if priority > Priority.LIVE:
            reserved += _count(
                session,
                col(UploadJob.state) == JobState.QUEUED.value,
                col(UploadJob.priority) < priority,
            )
    if quota_left > reserved:
        return None
    whom = "uploaded tickets" if priority <= Priority.LIVE else "uploaded tickets and live events"
    return UploadWait(
        until=resets_at,
        reason=(
            f"daily API quota nearly spent ({quota_left} calls left, {reserved} kept for "
            f"{whom}); waiting for the next window"
        ),
    )
