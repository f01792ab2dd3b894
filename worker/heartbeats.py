"""Each worker writes, into the database, that it is consuming: the fleet's sign of life.

The metrics are computed from the database (`monitoring`), so that they hold for a whole
fleet and whatever the broker; Flower's view of the workers lives in one Flower's memory
and only while it runs. Celery's consumer sends a heartbeat event every two seconds while
it is connected and consuming (its `Heart`, stopped when the broker connection is lost);
its `heartbeat_sent` signal is the cue here. At most every `WRITE_EVERY` seconds the
worker's main process records the beat (`models.workers`), and on a clean shutdown that it
stopped. A worker that hangs, loses its broker or is killed simply stops writing.

The write runs in a thread of its own, so a slow database never holds up the consumer's
event loop, and through a pool-less engine, so the pool children (forked from the main
process at any time) inherit no open database connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from typing import Any

from celery import signals
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from config import Settings
from models import make_engine, utcnow
from models.workers import HEARTBEAT_EVERY, record_heartbeat, record_stopped

__all__ = ["WRITE_EVERY", "HeartbeatWriter", "record_worker_heartbeats"]

log = logging.getLogger(__name__)

WRITE_EVERY = HEARTBEAT_EVERY.total_seconds()  # seconds between two writes of one worker
_STOP = "stop"


class HeartbeatWriter:
    """Writes one worker's heartbeats from a background thread of the main process."""

    def __init__(self, settings: Settings, *, write_every: float = WRITE_EVERY) -> None:
        self._settings = settings
        self._write_every = write_every
        self._last_queued = float("-inf")
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue(maxsize=4)
        self._thread: threading.Thread | None = None
        self._failing = False

    def beat(self, hostname: str) -> None:
        """The consumer sent a heartbeat: record it, unless one was recorded just now."""
        moment = time.monotonic()
        if moment - self._last_queued < self._write_every:
            return
        self._last_queued = moment
        self._put(("beat", hostname))

    def stopped(self, hostname: str) -> None:
        """The worker shuts down: record it, and let the thread finish (briefly)."""
        self._put(("stopped", hostname))
        self._put((_STOP, hostname))
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _put(self, item: tuple[str, str]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="yfdocs-heartbeat", daemon=True)
            self._thread.start()
        # A full queue: the thread is behind on a slow database; the next beat comes soon.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(item)

    def _run(self) -> None:
        engine = make_engine(self._settings.resolved_database_url, poolclass=NullPool)
        try:
            while True:
                kind, hostname = self._queue.get()
                if kind == _STOP:
                    return
                self._write(engine, kind, hostname)
        finally:
            engine.dispose()

    def _write(self, engine: Any, kind: str, hostname: str) -> None:
        try:
            if kind == "beat":
                record_heartbeat(engine, hostname, pid=os.getpid(), now=utcnow())
            else:
                record_stopped(engine, hostname, now=utcnow())
        except SQLAlchemyError as exc:
            if not self._failing:
                log.warning("could not record this worker's heartbeat: %s", exc)
            self._failing = True
            return
        if self._failing:
            log.info("recording this worker's heartbeat again")
        self._failing = False


def record_worker_heartbeats(settings: Settings) -> HeartbeatWriter:
    """Record this worker's heartbeats in the database (call before the worker starts)."""
    writer = HeartbeatWriter(settings)

    def on_heartbeat(sender: Any = None, **_: Any) -> None:
        hostname = getattr(getattr(sender, "eventer", None), "hostname", None)
        if hostname:
            writer.beat(hostname)

    def on_shutdown(sender: Any = None, **_: Any) -> None:
        hostname = getattr(sender, "hostname", None)
        if hostname:
            writer.stopped(hostname)

    signals.heartbeat_sent.connect(on_heartbeat, weak=False)
    signals.worker_shutdown.connect(on_shutdown, weak=False)
    return writer
