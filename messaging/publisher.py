"""The one way code below the Celery adapter sends work: a job id to the upload or poll task."""

from __future__ import annotations

from typing import Protocol

from models.errors import Decision, YfdocsError

__all__ = ["JobPublisher", "PublishError"]


class PublishError(YfdocsError):
    """The broker did not take a message; the job stays in the database for the sweeper."""

    decision = Decision.RELEASE


class JobPublisher(Protocol):
    """Sends a job id to the workers; raises `PublishError` when the broker refuses.

    The message carries the job id and nothing else: the database is the record, and it
    also holds every wait. A message is sent only when its work can start now, so it
    never carries a countdown.
    """

    def publish_upload(self, job_id: str) -> None: ...

    def publish_poll(self, job_id: str) -> None: ...
