"""The embedded broker never hands a consumer a message that is still being written."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from kombu import Connection

from worker import filesystem_broker
from worker.celery_app import broker_transport_options, create_celery_app
from worker.filesystem_broker import AtomicFilesystemTransport
from worker.settings import Settings


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
