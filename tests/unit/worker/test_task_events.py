"""Housekeeping tasks send no task event, so Flower's task list shows deliveries only.

What a publisher sends is read from the message Celery builds (its `sent_event`); what a
worker sends is decided by the registered task's `send_events`, which Celery's strategy
and request check before every task event.
"""

from __future__ import annotations

import pytest
from celery import Celery

from config import Settings
from messaging import HOUSEKEEPING_TASKS, POLL_TASK, SWEEP_TASK, UPLOAD_TASK
from worker.tasks import create_worker_app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Celery:
    """One worker app for the module (Celery shares registered tasks between the apps of a
    process, and warns when a second app registers them again)."""
    return create_worker_app(Settings(data_dir=tmp_path_factory.mktemp("yfdocs")))


def sent_event(app: Celery, task_name: str) -> object:
    message = app.amqp.create_task_message(
        "job.0001", task_name, ["job"], {}, create_sent_event=True
    )
    return message.sent_event


def test_the_sweep_is_housekeeping() -> None:
    assert SWEEP_TASK in HOUSEKEEPING_TASKS
    assert not {UPLOAD_TASK, POLL_TASK} & HOUSEKEEPING_TASKS


@pytest.mark.parametrize("name", sorted(HOUSEKEEPING_TASKS))
def test_housekeeping_sends_no_event_at_all(app: Celery, name: str) -> None:
    assert app.tasks[name].send_events is False, "the worker sends none of its events"
    assert sent_event(app, name) is None, "its publisher sends no task-sent event"


@pytest.mark.parametrize("name", [UPLOAD_TASK, POLL_TASK])
def test_deliveries_keep_every_event(app: Celery, name: str) -> None:
    assert app.tasks[name].send_events is True
    event = sent_event(app, name)
    assert isinstance(event, dict)
    assert event["name"] == name
