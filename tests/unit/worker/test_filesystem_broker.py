"""The embedded broker: whole messages only, in publish order, named after their task."""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path

import pytest
from kombu import Connection

from config import Settings
from messaging import QUEUE_NAME, UPLOAD_TASK, job_id_of_task
from worker import filesystem_broker
from worker.celery_app import (
    CeleryPublisher,
    broker_transport_options,
    create_celery_app,
    filesystem_queue_folder,
    job_ids_waiting_in_filesystem_queue,
)
from worker.filesystem_broker import AtomicFilesystemTransport


def _waiting(queue_folder: Path, queue: str) -> set[str]:
    """The task ids of `queue`'s messages in the folder, as the sweeper reads them."""
    return filesystem_broker.task_ids_in(
        filesystem_broker.list_queue_folder(queue_folder).get(queue, ())
    )


def test_filesystem_urls_resolve_to_the_atomic_transport(tmp_path: Path) -> None:
    app = create_celery_app(Settings(data_dir=tmp_path))
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, AtomicFilesystemTransport)


def test_a_consumer_racing_producers_only_ever_reads_whole_messages(tmp_path: Path) -> None:
    options = broker_transport_options(Settings(data_dir=tmp_path))
    body = {"job_id": "x" * 4000}
    count_per_producer, producers = 300, 3
    received: list[object] = []
    errors: list[BaseException] = []

    def produce() -> None:
        with Connection("filesystem://localhost/", transport_options=options) as connection:
            queue = connection.SimpleQueue("race")
            for _ in range(count_per_producer):
                queue.put(body)
            queue.close()

    def consume() -> None:
        try:
            with Connection("filesystem://localhost/", transport_options=options) as connection:
                queue = connection.SimpleQueue("race")
                while len(received) < count_per_producer * producers:
                    message = queue.get(block=True, timeout=10)
                    received.append(message.payload)
                    message.ack()
                queue.close()
        except BaseException as exc:
            errors.append(exc)

    # Bind the queue first, as a worker does at start: kombu records a binding in the
    # process's memory before it writes the binding table, so threads of one process that
    # bind concurrently can publish into a table that is not written yet.
    with Connection("filesystem://localhost/", transport_options=options) as connection:
        connection.SimpleQueue("race").close()
    consumer = threading.Thread(target=consume)
    consumer.start()
    threads = [threading.Thread(target=produce) for _ in range(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    consumer.join(timeout=60)

    assert errors == []
    assert len(received) == count_per_producer * producers
    assert all(payload == body for payload in received)
    staging = Path(options["data_folder_in"]).parent / "staging"
    assert list(staging.iterdir()) == [], "no half-written message is left behind"


def test_a_message_file_enters_the_queue_folder_only_when_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stock transport creates the file in the queue folder and then writes it; the
    consumer can take it in between and read it empty. Here the queue folder must never
    hold an unfinished message: at the moment of the rename the staged file is whole."""
    options = broker_transport_options(Settings(data_dir=tmp_path))
    queue_folder = Path(options["data_folder_in"])
    seen: list[tuple[str, list[str], bytes]] = []
    real_replace = os.replace

    def observing_replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        in_queue = sorted(p.name for p in queue_folder.iterdir())
        seen.append((Path(target).name, in_queue, Path(source).read_bytes()))
        real_replace(source, target)

    monkeypatch.setattr(filesystem_broker.os, "replace", observing_replace)
    with Connection("filesystem://localhost/", transport_options=options) as connection:
        queue = connection.SimpleQueue("whole")
        queue.put({"job_id": "abc"})
        message = queue.get(block=True, timeout=5)
        assert message.payload == {"job_id": "abc"}
        message.ack()
        queue.close()

    messages = [entry for entry in seen if entry[0].endswith(".whole.msg")]
    assert len(messages) == 1, "the message went through the staging folder"
    _, before_rename, staged_bytes = messages[0]
    assert [name for name in before_rename if name.endswith(".whole.msg")] == []
    assert json.loads(staged_bytes)["body"]


def test_a_published_jobs_file_names_its_job_and_kombu_still_reads_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    job_id = str(uuid.uuid4())
    CeleryPublisher(create_celery_app(settings)).publish_upload(job_id)

    names = [path.name for path in filesystem_queue_folder(settings).iterdir()]
    assert len(names) == 1
    assert job_id in names[0]
    assert names[0].partition(".")[2] == f"{QUEUE_NAME}.msg", "kombu's reader picks it"
    assert job_ids_waiting_in_filesystem_queue(settings) == {job_id}

    options = broker_transport_options(settings)
    with Connection("filesystem://localhost/", transport_options=options) as connection:
        queue = connection.SimpleQueue(QUEUE_NAME)
        message = queue.get(block=True, timeout=5)
        assert message.headers["task"] == UPLOAD_TASK
        assert job_id_of_task(message.headers["id"]) == job_id
        assert message.payload[0] == [job_id]
        message.ack()
        queue.close()

    assert job_ids_waiting_in_filesystem_queue(settings) == set(), "taken: no longer waiting"


def test_every_message_gets_its_own_task_id_and_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    job_id = str(uuid.uuid4())
    publisher = CeleryPublisher(create_celery_app(settings))
    publisher.publish_upload(job_id)
    publisher.publish_poll(job_id)

    task_ids = _waiting(filesystem_queue_folder(settings), QUEUE_NAME)
    assert len(task_ids) == 2
    assert {job_id_of_task(task_id) for task_id in task_ids} == {job_id}


@pytest.mark.parametrize(
    "task_id",
    [
        "1b4e28ba-2fa1-11d2-883f-0016d3cca427.0a1b2c3d4e5f",
        "with_underscores.and.dots",
        "slash/space ~tilde~2e",
        "ünïcödé.ταυτότητα",
    ],
)
def test_a_task_id_survives_the_file_name(tmp_path: Path, task_id: str) -> None:
    name = filesystem_broker.message_file_name("jobs", {"headers": {"id": task_id}}, now_ms=42)
    (tmp_path / name).touch()
    (tmp_path / "43_0123456789ab_other.elsewhere.msg").touch()

    assert name.startswith("42_")
    assert name.partition(".")[2] == "jobs.msg"
    assert "/" not in name
    assert _waiting(tmp_path, "jobs") == {task_id}


def test_a_message_without_a_task_id_is_still_named_and_read(tmp_path: Path) -> None:
    options = broker_transport_options(Settings(data_dir=tmp_path, _env_file=None))
    queue_folder = Path(options["data_folder_in"])
    with Connection("filesystem://localhost/", transport_options=options) as connection:
        queue = connection.SimpleQueue("plain")
        queue.put({"job_id": "abc"})
        assert _waiting(queue_folder, "plain") == set()
        message = queue.get(block=True, timeout=5)
        assert message.payload == {"job_id": "abc"}
        message.ack()
        queue.close()


def test_messages_are_read_in_the_order_they_were_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The publish time leads the name; task ids that sort the other way change nothing."""
    ticks = iter(range(1000, 2000))
    monkeypatch.setattr(filesystem_broker, "monotonic", lambda: next(ticks))
    options = broker_transport_options(Settings(data_dir=tmp_path, _env_file=None))
    task_ids = ["zz.5", "yy.4", "xx.3", "ww.2", "vv.1"]
    with Connection("filesystem://localhost/", transport_options=options) as connection:
        queue = connection.SimpleQueue("ordered")
        for task_id in task_ids:
            queue.put({"task": task_id}, headers={"id": task_id})
        received = []
        for _ in task_ids:
            message = queue.get(block=True, timeout=5)
            received.append(message.headers["id"])
            message.ack()
        queue.close()

    assert received == task_ids
