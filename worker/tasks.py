"""The Celery tasks: thin adapters from a job id to a plain function in `worker.services`."""

from __future__ import annotations

from celery import Celery

__all__ = ["register"]


def register(app: Celery) -> None:
    """Attach the yfdocs tasks to `app` (filled in with the worker)."""
