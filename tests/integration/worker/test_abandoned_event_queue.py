"""A killed Flower on the embedded broker: its event queue stops growing once the sweeper ran.

Flower binds an event queue of its own, and every event of every worker becomes a file for
it. Killed, it cannot unbind: the files pile up in the folder every worker lists on each
poll. A real worker (with the sweeper's beat) and a real `yfdocs flower`, SIGKILLed; the
service's sweep interval (1 s) makes the abandoned-queue age 20 s.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins.flower import FlowerProcess, running_flower
from tests.plugins.worker_fixtures import ServiceUnderTest
from worker.celery_app import filesystem_queue_folder
from worker.filesystem_broker import list_queue_folder
from worker.sweeper import abandoned_queue_age

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def flower(service: ServiceUnderTest) -> Iterator[FlowerProcess]:
    with running_flower(service) as running:
        yield running


def bound_to_events(service: ServiceUnderTest) -> list[str]:
    table = service.settings.broker_dir / "control" / "celeryev.exchange"
    return [row[2] for row in json.loads(table.read_text())] if table.exists() else []


def files_of(service: ServiceUnderTest, queue: str) -> int:
    return len(list_queue_folder(filesystem_queue_folder(service.settings)).get(queue, []))


def heartbeats_received_live(service: ServiceUnderTest, count: int, timeout: float) -> str:
    """Take `count` worker heartbeats as a live event consumer; its queue's name.

    Proof that the worker still sends events to whoever listens, while the dead queue
    gets none; the consumer's own queue goes when it stops.
    """
    heartbeats: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout
    with service.app.connection_for_read() as connection:
        receiver = service.app.events.Receiver(
            connection, handlers={"worker-heartbeat": heartbeats.append}
        )
        for _ in receiver.consume(limit=None, timeout=timeout, wakeup=False):
            if len(heartbeats) >= count:
                break
            assert time.monotonic() < deadline, f"{len(heartbeats)} heartbeats in {timeout}s"
    return str(receiver.queue.name)


def test_a_killed_flowers_event_queue_stops_growing_once_the_sweeper_has_run(
    service: ServiceUnderTest, flower: FlowerProcess
) -> None:
    age = abandoned_queue_age(service.settings)
    assert age == 20, "the service's sweep interval of 1 s"
    worker = service.start_worker()  # with the sweeper's beat
    flower.wait_for_worker(f"test-0-{os.getpid()}@")  # Flower reads its event queue
    [dead] = bound_to_events(service)

    os.killpg(flower.process.pid, signal.SIGKILL)
    flower.process.wait(timeout=10)
    service.wait_until(
        lambda: files_of(service, dead) >= 5, timeout=30, what="events piling up for nobody"
    )
    piled_up = files_of(service, dead)
    service.wait_until(
        lambda: dead not in bound_to_events(service) and files_of(service, dead) == 0,
        timeout=age + 60,
        what="the sweeper to remove the dead queue",
    )

    witness = heartbeats_received_live(service, count=3, timeout=30)

    assert files_of(service, dead) == 0, "events went on, none to the dead queue"
    assert dead not in bound_to_events(service)
    assert witness not in bound_to_events(service), "a consumer that stops takes its queue"
    assert piled_up >= 5
    log = Path(worker.log_path).read_text(errors="replace")
    assert "abandoned_queues_removed=1" in log, worker.log_tail()
