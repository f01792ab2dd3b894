"""The quota rule (`scheduling.policy.quota`) over the ledger and the job table."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from config import Settings
from models import JobState, Priority
from models import jobs as job_table
from scheduling.ledger import calls_in_quota_window
from scheduling.policy.quota import UploadWait, upload_wait

__all__ = ["UploadWait", "upload_must_wait"]


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
    waiting_before = 0
    live_expected_later = 0.0
    if priority > Priority.LIVE:
        waiting_before = job_table.count_jobs(engine, JobState.QUEUED, priority_below=priority)
        # Live documents come at about yesterday's rate: keep their calls for the rest of
        # this quota window.
        window = timedelta(seconds=settings.quota_window)
        arrived = job_table.count_created_since(
            engine, now - window, priority_below=Priority.BACKFILL
        )
        live_expected_later = arrived * max(0.0, (resets_at - now) / window)
    return upload_wait(
        priority=priority,
        quota_left=max(0, settings.daily_quota - calls),
        polling_tickets=job_table.count_jobs(engine, JobState.POLLING),
        waiting_before=waiting_before,
        resets_at=resets_at,
        live_expected_later=live_expected_later,
    )
