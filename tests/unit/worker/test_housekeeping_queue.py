"""Sweeps travel on a queue of their own, apart from uploads and polls; the sweeper never
removes a queue the workers read."""

from __future__ import annotations

from pathlib import Path

from config import Settings
from messaging import (
    HOUSEKEEPING_QUEUE_NAME,
    HOUSEKEEPING_TASKS,
    POLL_TASK,
    QUEUE_NAME,
    SWEEP_TASK,
    TASK_QUEUE_NAMES,
    UPLOAD_TASK,
)
from worker.celery_app import create_celery_app


def test_housekeeping_is_routed_apart_from_api_work(tmp_path: Path) -> None:
    app = create_celery_app(Settings(data_dir=tmp_path, _env_file=None))  # type: ignore[call-arg]
    router = app.amqp.router

    def queue_of(task: str) -> str:
        return str(router.route({}, task)["queue"].name)

    assert SWEEP_TASK in HOUSEKEEPING_TASKS
    assert {queue_of(task) for task in HOUSEKEEPING_TASKS} == {HOUSEKEEPING_QUEUE_NAME}
    assert queue_of(UPLOAD_TASK) == queue_of(POLL_TASK) == QUEUE_NAME
    assert {QUEUE_NAME, HOUSEKEEPING_QUEUE_NAME} <= set(app.amqp.queues)
    assert {QUEUE_NAME, HOUSEKEEPING_QUEUE_NAME} <= TASK_QUEUE_NAMES
