"""The embedded broker: no queue stays bound once its consumer is gone.

An event consumer (Flower) binds a queue of its own to the event exchange, and every event
of every worker becomes a file for it. A consumer that stops cleanly takes its queue along;
one that is killed leaves it to the sweeper, which unbinds and empties a queue whose oldest
message has waited too long for anyone alive. The clock is kombu's monotonic clock in the
module, moved by hand; the folders, bindings and messages are real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.transport import virtual

from config import Settings
from messaging import QUEUE_NAME, TASK_QUEUE_NAMES
from worker import filesystem_broker
from worker.celery_app import broker_transport_options
from worker.filesystem_broker import (
    AtomicFilesystemTransport,
    abandoned_queues,
    list_queue_folder,
    remove_queues,
)

REPOSITORY = Path(__file__).resolve().parents[3]
EVENTS = Exchange("celeryev", type="topic")
TASKS = Exchange(QUEUE_NAME, type="direct")
AGE = 300.0  # seconds a message may wait before its queue counts as abandoned


class Broker:
    """One data dir's broker folders, with a connection and a clock to publish by."""

    def __init__(self, data_dir: Path, clock: list[float]) -> None:
        self.options: dict[str, Any] = broker_transport_options(
            Settings(data_dir=data_dir, _env_file=None)
        )
        self.queue_folder = Path(self.options["data_folder_in"])
        self.control_folder = Path(self.options["control_folder"])
        self.clock = clock
        self.connection = Connection("filesystem://localhost/", transport_options=self.options)

    def connect(self) -> Connection:
        return Connection("filesystem://localhost/", transport_options=self.options)

    def bind_event_queue(self, connection: Connection | None = None) -> str:
        """Bind an event queue as Flower does (its name is unique, like Flower's uuid)."""
        queue = event_queue(f"celeryev.{uuid.uuid4()}")
        queue.bind((connection or self.connection).default_channel).declare()
        return str(queue.name)

    def publish_events(self, count: int) -> None:
        """What the workers send all the time: heartbeats and task events."""
        producer = Producer(self.connection.default_channel)
        for number in range(count):
            producer.publish(
                {"type": "worker-heartbeat", "number": number},
                exchange=EVENTS,
                routing_key="worker.heartbeat",
                declare=[EVENTS],
            )

    def publish_task(self) -> None:
        queue = Queue(QUEUE_NAME, TASKS, routing_key=QUEUE_NAME)
        Producer(self.connection.default_channel).publish(
            {"job": "x"}, exchange=TASKS, routing_key=QUEUE_NAME, declare=[queue]
        )

    def files(self, queue: str) -> list[str]:
        return list_queue_folder(self.queue_folder).get(queue, [])

    def bound(self, exchange: str = "celeryev") -> list[str]:
        table = self.control_folder / f"{exchange}.exchange"
        if not table.exists():
            return []
        return [row[2] for row in json.loads(table.read_text())]

    def sweep(self, keep: frozenset[str] = TASK_QUEUE_NAMES) -> tuple[list[str], int]:
        """What the sweeper does on this broker: one listing, then only what is abandoned."""
        abandoned = abandoned_queues(
            list_queue_folder(self.queue_folder), keep=keep, older_than=AGE
        )
        removed = remove_queues(self.queue_folder, self.control_folder, abandoned)
        return sorted(abandoned), removed


def event_queue(name: str) -> Queue:
    """The queue a Celery event receiver declares: auto-delete, all routing keys."""
    return Queue(name, EVENTS, routing_key="#", auto_delete=True)


@pytest.fixture(autouse=True)
def _fresh_broker_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """kombu keeps what a process has bound in memory, and binds nothing twice: each test
    is a fresh process to it, with its own folders."""
    monkeypatch.setattr(AtomicFilesystemTransport, "global_state", virtual.BrokerState())


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [50_000.0]
    monkeypatch.setattr(filesystem_broker, "monotonic", lambda: now[0])
    return now


@pytest.fixture
def broker(tmp_path: Path, clock: list[float]) -> Iterator[Broker]:
    under_test = Broker(tmp_path, clock)
    yield under_test
    under_test.connection.release()


def test_a_killed_consumers_event_queue_keeps_collecting_until_it_is_removed(
    broker: Broker,
) -> None:
    dead = broker.bind_event_queue()  # its consumer is gone and did not clean up
    broker.publish_events(5)
    assert len(broker.files(dead)) == 5
    assert dead in broker.bound()

    broker.clock[0] += AGE - 1
    broker.publish_events(2)
    assert broker.sweep() == ([], 0), "not yet: a slow consumer may still come for them"
    assert len(broker.files(dead)) == 7
    assert dead in broker.bound()

    broker.clock[0] += 2
    assert broker.sweep() == ([dead], 7)
    assert broker.files(dead) == []
    assert dead not in broker.bound()

    broker.publish_events(3)
    assert broker.files(dead) == [], "unbound: new events no longer land there"


def test_the_task_queue_is_never_removed_however_old_its_messages(broker: Broker) -> None:
    broker.publish_task()
    broker.publish_task()
    broker.clock[0] += 100 * AGE

    assert broker.sweep() == ([], 0)
    assert len(broker.files(QUEUE_NAME)) == 2
    assert broker.bound(QUEUE_NAME) == [QUEUE_NAME]


def test_a_live_consumers_fresh_messages_stay_while_an_abandoned_queue_goes(
    broker: Broker,
) -> None:
    dead = broker.bind_event_queue()
    with broker.connect() as live_connection:
        received: list[object] = []
        live = f"celeryev.{uuid.uuid4()}"
        consumer = Consumer(
            live_connection,
            [event_queue(live)],
            callbacks=[lambda body, message: received.append(body)],
        )
        consumer.consume()
        broker.publish_events(4)
        broker.clock[0] += AGE + 1
        # The live consumer takes what was published then; only fresh events wait for it.
        while len(received) < 4:
            live_connection.drain_events(timeout=5)
        broker.publish_events(2)

        assert broker.sweep() == ([dead], 6)
        assert broker.sweep() == ([], 0), "the live queue's oldest message is fresh"
        assert len(broker.files(live)) == 2
        assert live in broker.bound()
        assert dead not in broker.bound()
        consumer.cancel()


def test_a_queue_bound_while_the_sweeper_rewrites_the_table_stays_bound(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweeper and a new consumer change one table file; the lock keeps both changes."""
    dead = broker.bind_event_queue()
    broker.publish_events(1)
    alive = broker.bind_event_queue()
    broker.clock[0] += AGE + 1
    abandoned = abandoned_queues(
        list_queue_folder(broker.queue_folder), keep=TASK_QUEUE_NAMES, older_than=AGE
    )
    assert list(abandoned) == [dead]
    newcomer = f"celeryev.{uuid.uuid4()}"
    binding = threading.Thread(target=_bind_in_a_new_connection, args=(broker, newcomer))
    real_replace = os.replace
    blocked_while_the_sweeper_held_the_table: list[bool] = []

    def replace_after_a_concurrent_bind_began(source: Any, target: Any) -> None:
        if (
            Path(target).name == "celeryev.exchange"
            and not blocked_while_the_sweeper_held_the_table
        ):
            binding.start()  # it reads the table now, so it must wait for this rewrite
            binding.join(timeout=0.5)
            blocked_while_the_sweeper_held_the_table.append(binding.is_alive())
        real_replace(source, target)

    monkeypatch.setattr(filesystem_broker.os, "replace", replace_after_a_concurrent_bind_began)
    removed = remove_queues(broker.queue_folder, broker.control_folder, abandoned)
    binding.join(timeout=30)

    assert removed == 1
    assert blocked_while_the_sweeper_held_the_table == [True]
    assert sorted(broker.bound()) == sorted([alive, newcomer])


def _bind_in_a_new_connection(broker: Broker, queue: str) -> None:
    with broker.connect() as connection:
        event_queue(queue).bind(connection.default_channel).declare()


def test_a_consumer_that_stops_cleanly_takes_its_queue_along(broker: Broker) -> None:
    queue = f"celeryev.{uuid.uuid4()}"
    with broker.connect() as connection:
        consumer = Consumer(connection, [event_queue(queue)], callbacks=[lambda b, m: None])
        consumer.consume()
        broker.publish_events(3)
        assert queue in broker.bound()
        consumer.cancel()

        assert queue not in broker.bound()
        assert broker.files(queue) == []


def test_a_queue_another_channel_still_consumes_stays_until_it_stops_too(
    broker: Broker,
) -> None:
    queue = f"celeryev.{uuid.uuid4()}"
    with broker.connect() as connection:
        first = Consumer(connection.channel(), [event_queue(queue)], callbacks=[])
        second = Consumer(connection.channel(), [event_queue(queue)], callbacks=[])
        first.consume()
        second.consume()
        first.cancel()
        assert queue in broker.bound()
        second.cancel()
        assert queue not in broker.bound()


def test_a_task_queue_stays_bound_when_its_consumer_stops(broker: Broker) -> None:
    with broker.connect() as connection:
        queue = Queue(QUEUE_NAME, TASKS, routing_key=QUEUE_NAME)
        Consumer(connection, [queue], callbacks=[]).consume()
    assert broker.bound(QUEUE_NAME) == [QUEUE_NAME]


def test_a_forked_child_closing_its_inherited_connection_leaves_the_parents_queue(
    broker: Broker,
) -> None:
    """Connection pools close what a child inherits; the parent's consumer is not the child's."""
    queue = f"celeryev.{uuid.uuid4()}"
    with broker.connect() as connection:
        consumer = Consumer(connection, [event_queue(queue)], callbacks=[])
        consumer.consume()
        with warnings.catch_warnings():
            # Python 3.12+ warns of fork in a threaded process; this child only closes.
            warnings.simplefilter("ignore", DeprecationWarning)
            child = os.fork()
        if child == 0:  # pragma: no cover - the child's own exit code is the report
            try:
                connection.close()
            finally:
                os._exit(0)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert queue in broker.bound(), "still consumed by this process"
        consumer.cancel()
        assert queue not in broker.bound()


CONSUMER_SCRIPT = """
import json, os, signal, sys
from kombu import Connection, Consumer, Exchange, Queue
import worker.filesystem_broker  # the embedded transport, as every yfdocs process loads it

options, name, ending = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
connection = Connection("filesystem://localhost/", transport_options=options)
queue = Queue(name, Exchange("celeryev", type="topic"), routing_key="#", auto_delete=True)
Consumer(connection, [queue], callbacks=[]).consume()
if ending == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
sys.exit(0)  # as Flower on SIGTERM: its event thread never cancels its consumer
"""


@pytest.mark.parametrize(
    ("ending", "left_bound"),
    [("exit", False), ("killed", True)],
    ids=["exits-without-cancelling", "killed"],
)
def test_a_consumer_process_that_exits_unbinds_and_a_killed_one_cannot(
    broker: Broker, ending: str, left_bound: bool
) -> None:
    queue = f"celeryev.{uuid.uuid4()}"
    finished = subprocess.run(
        [sys.executable, "-c", CONSUMER_SCRIPT, json.dumps(broker.options), queue, ending],
        cwd=REPOSITORY,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == (-9 if ending == "killed" else 0), finished.stderr

    assert (queue in broker.bound()) is left_bound
    broker.publish_events(2)
    assert len(broker.files(queue)) == (2 if left_bound else 0)


@pytest.mark.parametrize(
    ("offsets", "abandoned"),
    [
        ([-AGE - 1, 0], True),  # the oldest message decides
        ([-AGE + 1, 0], False),
        ([AGE + 1], True),  # stamped before the machine's monotonic clock started again
        ([5], False),
    ],
)
def test_the_oldest_message_decides_and_one_stamped_before_a_restart_is_old(
    tmp_path: Path, offsets: list[float], abandoned: bool
) -> None:
    now_ms = round(filesystem_broker.monotonic() * 1000)
    for offset in offsets:
        (tmp_path / f"{now_ms + round(offset * 1000)}_0123456789ab.celeryev.x.msg").touch()

    found = abandoned_queues(list_queue_folder(tmp_path), keep=(), older_than=AGE)

    assert (list(found) == ["celeryev.x"]) is abandoned


def test_a_file_a_consumer_took_meanwhile_is_not_counted(tmp_path: Path) -> None:
    queue_folder, control_folder = tmp_path / "queue", tmp_path / "control"
    queue_folder.mkdir()
    control_folder.mkdir()
    still_there = "1_0123456789ab.celeryev.gone.msg"
    (queue_folder / still_there).touch()
    taken = "2_0123456789ab.celeryev.gone.msg"

    assert remove_queues(queue_folder, control_folder, {"celeryev.gone": [still_there, taken]}) == 1
    assert list(queue_folder.iterdir()) == []
