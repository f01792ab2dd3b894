"""How a worker stops: SIGTERM to the process or to its whole group, or SIGINT.

Celery's pool children take SIGTERM's default action, so a SIGTERM that reaches the whole
process group (systemd's default KillMode, `timeout`, supervisord's stopasgroup, Ctrl-C in
a shell) kills them on the spot. A child killed while it waits for work holds the pool's
queue lock, and the main process then waits for that lock for ever at exit (billiard's
`Pool._help_stuff_finish`); a child killed in a step leaves its job held until the lease
runs out. Instead, each pool child handles SIGTERM itself:

- waiting for work: it leaves at once, by raising SystemExit where it waits, which gives
  the queue lock back as the exception unwinds;
- anywhere else (in a step, or reporting one's result to the main process): it lets that
  end, and leaves as it comes back to wait for work, before it reads another message.
  Every wait in a step for a call slot or a token fetch ends at once
  (`scheduling.call_context.stopping`: the job is handed back, no attempt spent); a call in
  flight finishes, within its timeouts, and its answer is recorded. A signal is never
  turned into an exception in the middle of writing a message to the main process, which
  would leave the pool's pipe half-written.

The main process, when its own warm shutdown begins (SIGTERM or SIGINT to it alone), passes
SIGTERM on to its children, so that their waits end too. The worker exits within a few
seconds plus the longest call still in flight, and no job waits for its lease.

That bound is also kept when Celery's own teardown sticks: a watchdog in the main process
(`watch_the_stop`) waits while any step is still in flight, and once none has been for
`STUCK_AFTER_SECONDS`, it writes every thread's stack to stderr and ends the worker and its
idle pool. Nothing in flight is cut short, and the stacks say where the teardown stuck.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn

from billiard import common as billiard_common
from billiard import pool as billiard_pool
from billiard import process as billiard_process
from celery import signals
from celery.worker import state as worker_state

from scheduling import call_context

__all__ = ["install"]

log = logging.getLogger(__name__)

# A warm shutdown with no step in flight takes a few seconds (the embedded broker's loop
# wakes every two); after this long with none, the teardown itself is stuck.
STUCK_AFTER_SECONDS = 10.0
WATCH_EVERY_SECONDS = 0.5
# Asks a pool child for its threads' stacks: a signal neither billiard nor Celery uses.
STACKS_SIGNAL = signal.SIGRTMIN + 4

_waiting_for_work = False  # a pool child blocked reading its next message from the pool
_leave_at_next_wait = False  # a pool child was told to stop while busy
_main_stopping = False  # set in the main process when its warm shutdown begins


def _leave() -> NoReturn:
    # A second SIGTERM (the group's, then the pool's) must not cut short the unwinding
    # that gives the queue lock back.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(0)


def _on_sigterm_in_child(signum: int, frame: FrameType | None) -> None:
    global _leave_at_next_wait
    if _leave_at_next_wait:
        # Told already. The group's SIGTERM and the one the main process passes on often
        # arrive together, and this may run inside the first one's `stopping.set()`, which
        # holds the event's lock: setting it again here would wait for that lock for ever.
        return
    _leave_at_next_wait = True
    call_context.stopping.set()
    if _waiting_for_work:
        _leave()


_make_protected_receive = billiard_pool.Worker._make_protected_receive


def _receive_leaving_when_told(worker: Any, conn: Any) -> Callable[..., Any]:
    """billiard's wait for the pool child's next message, marked as the one place where
    SIGTERM leaves at once, and left at its start by a child told to stop while busy."""
    receive: Callable[..., Any] = _make_protected_receive(worker, conn)
    if conn is not worker.inq:
        return receive

    def receive_unless_stopping(*args: Any, **kwargs: Any) -> Any:
        global _waiting_for_work
        if _leave_at_next_wait:
            _leave()
        _waiting_for_work = True
        try:
            return receive(*args, **kwargs)
        finally:
            _waiting_for_work = False

    return receive_unless_stopping


def _install_child_handler(**_: Any) -> None:
    """In a new pool child: handle SIGTERM ourselves. billiard would install its own after
    this initializer (it exits at once, and at a second signal even mid-unwind), so SIGTERM
    is taken off the list of signals it replaces, in this child only.

    A child the pool starts after the warm shutdown began (it replaces one that left)
    inherits `_main_stopping` through the fork and starts as stopping: it begins no step.
    """
    if _main_stopping:
        call_context.stopping.set()
    faulthandler.register(STACKS_SIGNAL, all_threads=True)  # to stderr, the worker's log
    term = signal.Signals.SIGTERM.name
    billiard_common.TERMSIGS_DEFAULT.discard(term)
    billiard_common.TERMSIGS_FULL.discard(term)
    signal.signal(signal.SIGTERM, _on_sigterm_in_child)


def _children() -> list[int]:
    return [pid for child in billiard_process.active_children() if (pid := child.pid) is not None]


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _on_warm_shutdown(**_: Any) -> None:
    """In the main process: pass SIGTERM on to the pool children, and watch the stop."""
    global _main_stopping
    _main_stopping = True
    _signal_all(_children(), signal.SIGTERM)
    threading.Thread(
        target=watch_the_stop,
        kwargs={"steps_in_flight": _steps_in_flight, "give_up": _give_up_the_stuck_stop},
        name="yfdocs-stop-watchdog",
        daemon=True,
    ).start()


def watch_the_stop(
    *,
    steps_in_flight: Callable[[], int],
    give_up: Callable[[float], object],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> None:
    """Wait while steps are in flight; once none has been for `STUCK_AFTER_SECONDS`, call
    `give_up` with the seconds since the stop began. Returns only if `give_up` does."""
    began = clock()
    idle_since: float | None = None
    while True:
        now = clock()
        if steps_in_flight():
            idle_since = None
        elif idle_since is None:
            idle_since = now
        elif now - idle_since >= STUCK_AFTER_SECONDS:
            give_up(now - began)
            return
        sleep(WATCH_EVERY_SECONDS)


def _steps_in_flight() -> int:
    """Requests a pool child has accepted and not yet finished (the main process's count)."""
    return len(worker_state.active_requests)


def _give_up_the_stuck_stop(seconds: float) -> None:
    log.error(
        "the warm shutdown has not ended %.0f s after it began, with no step in flight for "
        "%.0f s: ending the worker and its idle pool now; every thread's stack follows",
        seconds,
        STUCK_AFTER_SECONDS,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    children = _children()
    _signal_all(children, STACKS_SIGNAL)
    time.sleep(1.0)  # the children write their stacks
    _signal_all(children, signal.SIGKILL)
    os._exit(1)


# How long the main process waits, at exit, for the pool's queue lock before giving up on
# draining a queue that no child will ever read again.
QUEUE_LOCK_WAIT_SECONDS = 0.5


def _help_stuff_finish_without_hanging(inqueue: Any, task_handler: Any, _pool: Any) -> None:
    """billiard's `Pool._help_stuff_finish`, with a bounded wait for the queue's read lock.

    It runs at exit, after the pool's children are gone; a child that died holding the lock
    (killed by a signal while it waited for work) would make the original wait for ever.
    """
    if not inqueue._rlock.acquire(timeout=QUEUE_LOCK_WAIT_SECONDS):
        log.warning("the pool's queue lock was held by a process that is gone; not draining it")
        return
    while task_handler.is_alive() and inqueue._reader.poll():
        inqueue._reader.recv()


_installed = False


def install() -> None:
    """Connect the handlers to Celery's signals, once per process."""
    global _installed
    if _installed:
        return
    signals.worker_process_init.connect(_install_child_handler, weak=False)
    signals.worker_shutting_down.connect(_on_warm_shutdown, weak=False)
    billiard_pool.Worker._make_protected_receive = _receive_leaving_when_told
    billiard_pool.Pool._help_stuff_finish = staticmethod(_help_stuff_finish_without_hanging)
    _installed = True
