"""A pool child's SIGTERM: it leaves at once only where it waits for its next message;
told while busy, it lets the work end and leaves as it comes back to wait, before it reads
another message (tests/reliability/test_worker_stops.py runs it in real workers)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from scheduling import call_context
from worker import shutdown


@dataclass
class FakePoolChild:
    """billiard's `Worker` as `_make_protected_receive` sees it: its queue of work."""

    inq: object = field(default_factory=object)
    synq: object = field(default_factory=object)


@pytest.fixture(autouse=True)
def fresh_child(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test a new pool child; SIGTERM's handling in the test process put back."""
    monkeypatch.setattr(shutdown, "_waiting_for_work", False)
    monkeypatch.setattr(shutdown, "_leave_at_next_wait", False)
    monkeypatch.setattr(shutdown, "_main_stopping", False)
    previous = signal.getsignal(signal.SIGTERM)
    stopping = call_context.stopping  # the process's own, even where a test replaces it
    yield
    signal.signal(signal.SIGTERM, previous)
    stopping.clear()


def receive_with(monkeypatch: pytest.MonkeyPatch, wait: Any) -> Any:
    """The child's wrapped wait for work, over a billiard wait that runs `wait`."""
    reads: list[str] = []

    def billiards_receive(worker: Any, conn: Any) -> Any:
        def receive() -> str:
            reads.append("read")
            return str(wait())

        return receive

    monkeypatch.setattr(shutdown, "_make_protected_receive", billiards_receive)
    child = FakePoolChild()
    return shutdown._receive_leaving_when_told(child, child.inq), reads


def test_told_while_busy_it_lets_the_work_end_and_leaves_before_the_next_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receive, reads = receive_with(monkeypatch, lambda: "a task")
    assert receive() == "a task"

    shutdown._on_sigterm_in_child(signal.SIGTERM, None)  # in a step: nothing raised
    assert call_context.stopping.is_set(), "the step's waits for a call end at once"

    with pytest.raises(SystemExit) as leaving:
        receive()
    assert leaving.value.code == 0
    assert reads == ["read"], "no message is read once told to stop"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN, "a second signal cannot cut in"


def test_told_while_waiting_it_leaves_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    def signal_arrives_during_the_wait() -> str:
        assert shutdown._waiting_for_work
        shutdown._on_sigterm_in_child(signal.SIGTERM, None)
        raise AssertionError("the handler raises where the child waits")

    receive, reads = receive_with(monkeypatch, signal_arrives_during_the_wait)
    with pytest.raises(SystemExit):
        receive()
    assert reads == ["read"]
    assert not shutdown._waiting_for_work, "no longer waiting once it has left the wait"


class EventSignalledWhileLocked(threading.Event):
    """An event whose `set` is interrupted, with its lock held, by a second SIGTERM: the
    group's signal and the main process's arriving together."""

    def set(self) -> None:
        with self._cond:  # type: ignore[attr-defined]
            if not getattr(self, "interrupted", False):
                self.interrupted = True
                shutdown._on_sigterm_in_child(signal.SIGTERM, None)
            self._flag = True  # type: ignore[attr-defined]
            self._cond.notify_all()  # type: ignore[attr-defined]


def test_a_second_sigterm_inside_the_first_ones_handler_does_not_wait_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by the stop watchdog's stacks: a pool child stuck for ever in the handler's
    `stopping.set()`, called again from a nested handler while the first held its lock."""
    stopping = EventSignalledWhileLocked()
    monkeypatch.setattr(call_context, "stopping", stopping)
    handled = threading.Thread(
        target=shutdown._on_sigterm_in_child, args=(signal.SIGTERM, None), daemon=True
    )
    handled.start()
    handled.join(timeout=5)

    assert not handled.is_alive(), "the nested handler waited for the event's lock"
    assert stopping.is_set()


def test_only_the_wait_for_work_is_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    unwrapped = object()
    monkeypatch.setattr(shutdown, "_make_protected_receive", lambda worker, conn: unwrapped)
    child = FakePoolChild()
    assert shutdown._receive_leaving_when_told(child, child.synq) is unwrapped


class FakeClock:
    """Time that moves only when the watchdog sleeps."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_stuck_stop_is_given_up_once_no_step_has_been_in_flight_for_a_while() -> None:
    clock = FakeClock()
    # A call in flight for the first 25 s of the stop, then nothing.
    in_flight = lambda: 1 if clock.now < 125.0 else 0  # noqa: E731
    given_up: list[float] = []

    shutdown.watch_the_stop(
        steps_in_flight=in_flight, give_up=given_up.append, clock=clock, sleep=clock.sleep
    )

    assert given_up == [pytest.approx(25.0 + shutdown.STUCK_AFTER_SECONDS)]


def test_a_step_that_starts_again_resets_the_wait() -> None:
    clock = FakeClock()
    # Idle for 8 s, a step for 2 s, then idle: the watch counts from the step's end.
    in_flight = lambda: 1 if 108.0 <= clock.now < 110.0 else 0  # noqa: E731
    given_up: list[float] = []

    shutdown.watch_the_stop(
        steps_in_flight=in_flight, give_up=given_up.append, clock=clock, sleep=clock.sleep
    )

    assert given_up == [pytest.approx(10.0 + shutdown.STUCK_AFTER_SECONDS)]
