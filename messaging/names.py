"""The names tasks and queues go by, and the task ids that name their job.

Task names are a public interface: Flower shows them and operators search by them.
"""

from __future__ import annotations

import uuid

__all__ = [
    "HOUSEKEEPING_QUEUE_NAME",
    "HOUSEKEEPING_TASKS",
    "POLL_TASK",
    "QUEUE_NAME",
    "SWEEP_TASK",
    "SYNC_PERSONS_TASK",
    "TASK_QUEUE_NAMES",
    "UPLOAD_TASK",
    "job_id_of_task",
    "task_id_for_job",
]

UPLOAD_TASK = "yfdocs.upload_document"
POLL_TASK = "yfdocs.poll_ticket"
SWEEP_TASK = "yfdocs.sweep"
SYNC_PERSONS_TASK = "yfdocs.sync_persons"
# API work (uploads and polls) and housekeeping (sweeps, dispatch passes) travel apart, so
# that housekeeping never waits behind a queue of uploads.
QUEUE_NAME = "yfdocs"
HOUSEKEEPING_QUEUE_NAME = "yfdocs.housekeeping"
# Tasks that keep the service running rather than deliver a document: they travel on the
# housekeeping queue and send no task events, so Flower's task list shows deliveries only
# (a sweep every few seconds would bury them). Every housekeeping task is named here.
HOUSEKEEPING_TASKS = frozenset({SWEEP_TASK})
# Every queue the workers take tasks from; on the filesystem broker the sweeper removes any
# other queue whose messages nobody reads.
TASK_QUEUE_NAMES = frozenset({QUEUE_NAME, HOUSEKEEPING_QUEUE_NAME})


def task_id_for_job(job_id: str) -> str:
    """A fresh task id that names its job: every message for a job can be told apart."""
    return f"{job_id}.{uuid.uuid4().hex[:12]}"


def job_id_of_task(task_id: str) -> str:
    """The job id at the start of a task id made by `task_id_for_job`."""
    return task_id.partition(".")[0]
