"""How a worker stops: SIGTERM to the process or to its whole group, or SIGINT.

Celery's pool children take SIGTERM's default action, so a SIGTERM that reaches the whole
process group (systemd's default KillMode, `timeout`, supervisord's stopasgroup, Ctrl-C in
a shell) kills them on the spot. A child killed while it waits for work holds the pool's
queue lock, and the main process then waits for that lock for ever at exit (billiard's
`Pool._help_stuff_finish`); a child killed in a step leaves its job held until the lease
runs out. Instead, each pool child handles SIGTERM itself:

- waiting for work: it leaves at once, by raising SystemExit where it waits, which gives
  the queue lock back as the exception unwinds;
- in a step: it lets the step end. Every wait for a call slot or a token fetch ends at once
  (`scheduling.call_context.stopping`: the job is handed back, no attempt spent); a call in
  flight finishes, within its timeouts, and its answer is recorded. The main process's warm
  shutdown then closes the pool.

The main process, when its own warm shutdown begins (SIGTERM or SIGINT to it alone), passes
SIGTERM on to its children, so that their waits end too. The worker exits within a few
seconds plus the longest call still in flight, and no job waits for its lease.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any

from billiard import common as billiard_common
from billiard import pool as billiard_pool
from billiard import process as billiard_process
from celery import signals

from scheduling import call_context

__all__ = ["in_step", "install"]

log = logging.getLogger(__name__)

_steps_running = 0  # a pool child runs one task at a time; a counter keeps nesting honest
_main_stopping = False  # set in the main process when its warm shutdown begins


@contextlib.contextmanager
def in_step() -> Iterator[None]:
    """Mark a task as running, so that SIGTERM lets it end instead of leaving at once."""
    global _steps_running
    _steps_running += 1
    try:
        yield
    finally:
        _steps_running -= 1


def _on_sigterm_in_child(signum: int, frame: FrameType | None) -> None:
    call_context.stopping.set()
    if _steps_running == 0:
        # Leave where we wait for work; a second SIGTERM (the group's, then the pool's)
        # must not cut short the unwinding that gives the queue lock back.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(0)


def _install_child_handler(**_: Any) -> None:
    """In a new pool child: handle SIGTERM ourselves. billiard would install its own after
    this initializer (it exits at once, and at a second signal even mid-unwind), so SIGTERM
    is taken off the list of signals it replaces, in this child only.

    A child the pool starts after the warm shutdown began (it replaces one that left)
    inherits `_main_stopping` through the fork and starts as stopping: it begins no step.
    """
    if _main_stopping:
        call_context.stopping.set()
    term = signal.Signals.SIGTERM.name
    billiard_common.TERMSIGS_DEFAULT.discard(term)
    billiard_common.TERMSIGS_FULL.discard(term)
    signal.signal(signal.SIGTERM, _on_sigterm_in_child)


def _pass_on_to_children(**_: Any) -> None:
    global _main_stopping
    _main_stopping = True
    for child in billiard_process.active_children():
        pid = child.pid
        if pid is None:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


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
    signals.worker_shutting_down.connect(_pass_on_to_children, weak=False)
    billiard_pool.Pool._help_stuff_finish = staticmethod(_help_stuff_finish_without_hanging)
    _installed = True
