"""The worker's heartbeat writer: at most one write per interval, off the consumer's loop."""

from __future__ import annotations

from pathlib import Path

from config import Settings
from models import make_engine, migrate
from models.workers import heartbeats
from worker.heartbeats import HeartbeatWriter


def test_beats_are_written_at_most_once_an_interval_and_the_stop_is_recorded(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    writer = HeartbeatWriter(settings, write_every=3600)

    writer.beat("worker@host")
    writer.beat("worker@host")  # within the interval: not queued
    writer.stopped("worker@host")  # waits for the thread

    (row,) = heartbeats(engine)
    assert row.hostname == "worker@host"
    assert row.stopped_at is not None
    assert row.last_seen_at == row.stopped_at
    engine.dispose()
