"""The Celery app, configured from the settings, and the publisher that sends job ids to it.

Messages carry a job id and nothing else; the database is the record. The embedded default
broker is kombu's `filesystem://` transport in absolute folders under the data dir (it
supports the fanout that Flower's events need); `amqp://` and `redis://` work unchanged.
A message's task id begins with its job id (`{job id}.{random}`), which Flower shows and the
filesystem broker writes into the message's file name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from celery import Celery
from kombu.entity import Exchange, Queue

from config import Settings
from messaging import (
    HOUSEKEEPING_QUEUE_NAME,
    HOUSEKEEPING_TASKS,
    POLL_TASK,
    QUEUE_NAME,
    SWEEP_TASK,
    SYNC_PERSONS_TASK,
    TASK_QUEUE_NAMES,
    UPLOAD_TASK,
    PublishError,
    job_id_of_task,
    task_id_for_job,
)
from worker import filesystem_broker
from worker.task_events import QuietHousekeepingAMQP, housekeeping_annotations

__all__ = [
    "CeleryPublisher",
    "broker_transport_options",
    "create_celery_app",
    "filesystem_queue_folder",
    "job_ids_waiting_in_filesystem_queue",
    "ready_api_messages",
]

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 5.0


def filesystem_queue_folder(settings: Settings) -> Path:
    """The folder that holds the messages no worker has taken yet (filesystem broker)."""
    return settings.broker_dir / "queue"


def job_ids_waiting_in_filesystem_queue(
    settings: Settings, files_by_queue: Mapping[str, Iterable[str]] | None = None
) -> set[str]:
    """Jobs whose message lies in the filesystem broker's task queue: from a listing the
    caller already made (`filesystem_broker.list_queue_folder`), or from a new one.

    Raises `OSError` when the folder cannot be listed.
    """
    if files_by_queue is None:
        files_by_queue = filesystem_broker.list_queue_folder(filesystem_queue_folder(settings))
    task_ids = filesystem_broker.task_ids_in(files_by_queue.get(QUEUE_NAME, ()))
    return {job_id_of_task(task_id) for task_id in task_ids}


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    """Per-transport options; the filesystem folders must be absolute and shared."""
    if settings.uses_filesystem_broker:
        queue_dir = filesystem_queue_folder(settings)
        processed_dir = settings.broker_dir / "processed"
        control_dir = settings.broker_dir / "control"
        for folder in (queue_dir, processed_dir, control_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "control_folder": str(control_dir),
            "processed_folder": str(processed_dir),
            "store_processed": False,
            # How often an idle worker looks for a new message file: the dispatcher keeps
            # only a few ready, so a worker must not sleep a second between two of them.
            "polling_interval": 0.1,
        }
    if settings.resolved_broker_url.startswith(("redis://", "rediss://")):
        # Longer than any task runs; no message waits for a countdown (the dispatcher
        # publishes work only when it is due).
        return {"visibility_timeout": 3600}
    return {}


def _task_exchange_and_queue_arguments(
    settings: Settings,
) -> tuple[Exchange, dict[str, Any] | None]:
    """The exchange and queue arguments of the task queues.

    A RabbitMQ quorum queue must be declared as one (Celery then turns off global QoS,
    which quorum queues refuse), and Celery delays countdown tasks in the broker itself
    (native delayed delivery) only for a topic exchange; with a direct one every countdown
    would be held in a worker's memory, taking a prefetch slot until it is due. yfdocs
    itself sends no countdown any more, but the exchange stays a topic one: RabbitMQ
    refuses to declare an existing exchange again with another type.
    """
    if settings.broker_queue_type == "quorum" and settings.uses_amqp_broker:
        topic = Exchange(QUEUE_NAME, type="topic")  # type: ignore[no-untyped-call]
        return topic, {"x-queue-type": "quorum"}
    return Exchange(QUEUE_NAME, type="direct"), None  # type: ignore[no-untyped-call]


def _task_queue(name: str, exchange: Exchange, arguments: dict[str, Any] | None) -> Queue:
    return Queue(name, exchange, routing_key=name, queue_arguments=arguments)  # type: ignore[no-untyped-call]


def create_celery_app(settings: Settings) -> Celery:
    """A Celery app for these settings: enough to publish, to run beat and to watch.

    The tasks are registered by `worker.tasks.create_worker_app`, which builds on this.
    """
    filesystem_broker.register()
    app = Celery(
        "yfdocs",
        broker=settings.resolved_broker_url,
        set_as_current=False,
        amqp=QuietHousekeepingAMQP,  # housekeeping tasks send no task-sent event
    )
    # Tasks always die before their lease runs out, so the sweeper never takes back a job
    # whose task is still alive; no call starts that could not end before the soft limit.
    budgets = settings.time_budgets
    exchange, queue_arguments = _task_exchange_and_queue_arguments(settings)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A task that raised (its job failed or expired, recorded) is acknowledged and never
        # delivered again; only a lost pool process hands its message back (the line above).
        task_acks_on_failure=True,
        worker_prefetch_multiplier=1,
        task_time_limit=budgets.hard_time_limit,
        task_soft_time_limit=budgets.soft_time_limit,
        task_default_queue=QUEUE_NAME,
        task_default_exchange=QUEUE_NAME,
        task_default_exchange_type=exchange.type,
        task_default_routing_key=QUEUE_NAME,
        task_queues=[
            _task_queue(name, exchange, queue_arguments) for name in sorted(TASK_QUEUE_NAMES)
        ],
        broker_transport_options=broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=PUBLISH_TIMEOUT_SECONDS,
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_annotations=housekeeping_annotations(),  # nor any other task event
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        enable_utc=True,
        timezone="UTC",
        task_routes={name: {"queue": HOUSEKEEPING_QUEUE_NAME} for name in HOUSEKEEPING_TASKS},
        beat_schedule={
            "yfdocs-sweep": {
                "task": SWEEP_TASK,
                "schedule": settings.sweep_interval,
                "options": {"expires": max(60.0, 4 * settings.sweep_interval)},
            },
            # Learner mapping for the HTTP intake (`intake.person_sync`).
            "yfdocs-sync-persons": {
                "task": SYNC_PERSONS_TASK,
                "schedule": settings.persons_sync_interval,
            },
        },
    )
    app.yfdocs_settings = settings  # not in app.conf: Flower shows the conf
    return app


def ready_api_messages(app: Celery) -> int | None:
    """How many messages wait in the API queue for a worker (RabbitMQ or Redis); None when
    the broker cannot be asked now. A message a worker has taken is not counted."""
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=PUBLISH_TIMEOUT_SECONDS)
            # Declared as the workers declare it (a no-op when it exists): Redis keeps no
            # empty queue, and a passive declare would call that an error.
            queue = app.amqp.queues[QUEUE_NAME].bind(connection.default_channel)
            declared = queue.queue_declare()
            return int(declared.message_count)
    except Exception as exc:  # any transport's error: the answer is "not known now"
        log.warning("cannot ask the broker how many messages wait: %s", exc)
        return None


class CeleryPublisher:
    """Sends job ids to the workers; raises `PublishError` instead of blocking on a dead broker."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def publish_upload(self, job_id: str) -> None:
        self._send(UPLOAD_TASK, job_id)

    def publish_poll(self, job_id: str) -> None:
        self._send(POLL_TASK, job_id)

    def _send(self, task_name: str, job_id: str) -> None:
        try:
            self._app.send_task(
                task_name,
                args=[job_id],
                task_id=task_id_for_job(job_id),
                retry=False,
                queue=QUEUE_NAME,
            )
        except Exception as exc:
            log.warning("could not publish %s for job %s: %s", task_name, job_id, exc)
            raise PublishError(
                f"broker did not accept {task_name} for job {job_id}: {exc}"
            ) from exc
