"""How a job travels to the workers: task and queue names, task ids, the publisher protocol.

No broker library is imported here: `worker.celery_app` implements `JobPublisher` with
Celery, and everything below the Celery adapter (the producer, the sweeper's logic, tests)
speaks only these names. May import: `models` (for the error tree's root).
"""

from __future__ import annotations

from messaging.names import (
    HOUSEKEEPING_QUEUE_NAME,
    HOUSEKEEPING_TASKS,
    POLL_TASK,
    QUEUE_NAME,
    SWEEP_TASK,
    SYNC_PERSONS_TASK,
    TASK_QUEUE_NAMES,
    UPLOAD_TASK,
    job_id_of_task,
    task_id_for_job,
)
from messaging.publisher import JobPublisher, PublishError

__all__ = [
    "HOUSEKEEPING_QUEUE_NAME",
    "HOUSEKEEPING_TASKS",
    "POLL_TASK",
    "QUEUE_NAME",
    "SWEEP_TASK",
    "SYNC_PERSONS_TASK",
    "TASK_QUEUE_NAMES",
    "UPLOAD_TASK",
    "JobPublisher",
    "PublishError",
    "job_id_of_task",
    "task_id_for_job",
]
