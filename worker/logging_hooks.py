"""Celery's logging, handed to the one setup every yfdocs process uses.

Celery configures logging itself when a worker or beat starts, unless a receiver of its
`setup_logging` signal does it instead. `use_yfdocs_logging` connects that receiver: the
worker's main process, the embedded beat and `yfdocs beat` then log through
`monitoring.logs` at the level given on the command line, in `YFDOCS_LOG_FORMAT`, and the
pool children inherit the handler when they fork.
"""

from __future__ import annotations

from typing import Any

from celery import signals

from config import Settings
from monitoring.logs import configure_logging

__all__ = ["use_yfdocs_logging"]


def use_yfdocs_logging(settings: Settings) -> None:
    """Make Celery log through `monitoring.logs` with these settings (call before it starts)."""

    def receiver(loglevel: Any = None, **_: Any) -> None:
        configure_logging(settings, loglevel or "INFO")

    signals.setup_logging.connect(receiver, weak=False)
