"""The task queue's declaration on RabbitMQ: classic by default, quorum when asked for."""

from __future__ import annotations

from pathlib import Path

from celery.utils.quorum_queues import detect_quorum_queues

from config import Settings
from messaging import QUEUE_NAME
from worker.celery_app import create_celery_app

AMQP = "amqp://yfdocs:secret@rabbitmq:5672//"


def make_settings(tmp_path: Path, **fields: str) -> Settings:
    return Settings(data_dir=tmp_path, **fields)  # type: ignore[arg-type]


def test_classic_by_default_with_a_direct_exchange(tmp_path: Path) -> None:
    app = create_celery_app(make_settings(tmp_path, broker_url=AMQP))
    queue = app.amqp.queues[QUEUE_NAME]
    assert not queue.queue_arguments
    assert queue.exchange.type == "direct"
    assert detect_quorum_queues(app, "amqp") == (False, "")


def test_quorum_on_rabbitmq_with_a_topic_exchange_for_delayed_delivery(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, broker_url=AMQP, broker_queue_type="quorum")
    app = create_celery_app(settings)
    queue = app.amqp.queues[QUEUE_NAME]
    assert queue.queue_arguments == {"x-queue-type": "quorum"}
    assert queue.exchange.type == "topic", "Celery's native delayed delivery needs it"
    assert app.conf.task_default_exchange_type == "topic"
    assert detect_quorum_queues(app, "amqp") == (True, QUEUE_NAME)


def test_quorum_is_ignored_on_other_brokers(tmp_path: Path) -> None:
    for extra in ({"broker_url": "redis://redis:6379/0"}, {}):
        settings = make_settings(tmp_path, broker_queue_type="quorum", **extra)
        url = settings.resolved_broker_url
        queue = create_celery_app(settings).amqp.queues[QUEUE_NAME]
        assert not queue.queue_arguments, url
        assert queue.exchange.type == "direct", url
