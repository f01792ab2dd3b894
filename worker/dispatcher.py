"""The dispatcher's pass: publish, in order, the work the plan chose (`scheduling.dispatcher`).

`DispatcherLoop` runs passes every `YFDOCS_DISPATCH_INTERVAL` seconds, in `yfdocs dispatcher`
(a process of its own, for fleets) and as a thread of every beat process (so `yfdocs worker`
with its embedded beat dispatches on a single machine). The dispatcher's lease in the
database lets exactly one of them act at a time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from config import Settings
from messaging import JobPublisher, PublishError
from models import JobState
from models import jobs as job_table
from scheduling.dispatcher import hold_dispatcher_lease, plan_dispatch
from scheduling.poll_planner import PollPlanner

__all__ = ["DispatchReport", "DispatcherLoop", "dispatch_once", "lease_seconds"]

log = logging.getLogger(__name__)


@dataclass
class DispatchReport:
    """What one pass did; logged and returned by the task."""

    leader: bool = True
    room: int = 0
    uploads: int = 0
    polls: int = 0
    windows_granted: int = 0
    tenants_waiting_for_a_window: int = 0
    broker_down: bool = False

    def __str__(self) -> str:
        if not self.leader:
            return "dispatch: another dispatcher holds the lease"
        parts = [
            f"{name}={value}" for name, value in vars(self).items() if name != "leader" and value
        ]
        return "dispatch: " + (", ".join(parts) or "nothing to do")


def lease_seconds(settings: Settings) -> float:
    """How long a dispatcher's lease lasts: a few passes, so a dead one is replaced soon."""
    return max(5.0, 5 * settings.dispatch_interval)


def dispatch_once(
    engine: Engine,
    settings: Settings,
    publisher: JobPublisher,
    *,
    owner: str,
    clock: Callable[[], datetime],
    first_poll_delay: Callable[[str], float] | None = None,
) -> DispatchReport:
    """One pass: hold the lease, plan, publish the chosen work and mark it published."""
    now = clock()
    if not hold_dispatcher_lease(engine, owner, now=now, seconds=lease_seconds(settings)):
        return DispatchReport(leader=False)
    plan = plan_dispatch(engine, settings, now, first_poll_delay=first_poll_delay)
    report = DispatchReport(
        room=plan.room,
        windows_granted=len(plan.grants),
        tenants_waiting_for_a_window=len(plan.waiting_for_window),
    )
    for grant in plan.grants:
        log.info("delivery window granted to tenant %s", grant.tenant_id)
    for candidate in plan.chosen:
        state = plan.states[candidate.job_id]
        marked_at = clock()
        if not job_table.mark_published(engine, candidate.job_id, state=state, now=marked_at):
            continue  # it moved on since the plan was made
        try:
            if state is JobState.POLLING:
                publisher.publish_poll(candidate.job_id)
            else:
                publisher.publish_upload(candidate.job_id)
        except PublishError as exc:
            job_table.unmark_published(engine, candidate.job_id, marked_at=marked_at)
            report.broker_down = True
            log.warning("dispatch stopped: the broker refused a message (%s)", exc)
            break
        except BaseException:
            job_table.unmark_published(engine, candidate.job_id, marked_at=marked_at)
            raise
        if state is JobState.POLLING:
            report.polls += 1
        else:
            report.uploads += 1
    return report


class DispatcherLoop:
    """Dispatcher passes until stopped: every `YFDOCS_DISPATCH_INTERVAL`, and sooner while
    there is more due work than one pass could send (a backlog keeps the API busy).

    Runs in `yfdocs dispatcher` and, as a thread, in every beat process (embedded in
    `yfdocs worker` or alone in `yfdocs beat`): the dispatcher runs with beat, never in a
    worker's pool, so a pass never waits for a free pool process.
    """

    # While a pass filled the broker's room, the next comes this much sooner.
    BACKLOG_SPEEDUP = 5.0

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        publisher: JobPublisher,
        *,
        owner: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.publisher = publisher
        self.owner = owner
        self.clock = clock
        self.stopped = threading.Event()
        self.planner = PollPlanner(
            engine, first_delay=settings.poll_first_delay, max_delay=settings.poll_max_delay
        )

    def run(self, *, once: bool = False) -> None:
        """Pass after pass until `stop()` (or one pass with `once`); a failing pass is logged
        and retried on the next, so a database or broker outage never ends the loop."""
        while not self.stopped.is_set():
            pause = self.settings.dispatch_interval
            try:
                report = dispatch_once(
                    self.engine,
                    self.settings,
                    self.publisher,
                    owner=self.owner,
                    clock=self.clock,
                    first_poll_delay=self._first_poll_delay,
                )
            except Exception:
                log.exception("dispatcher pass failed; trying again")
            else:
                sent = report.uploads + report.polls
                if sent or report.broker_down:
                    log.info("%s", report)
                if report.leader and sent and sent >= report.room:
                    pause /= self.BACKLOG_SPEEDUP
            if once:
                return
            self.stopped.wait(pause)

    def _first_poll_delay(self, tenant_id: str) -> float:
        """The wait before a ticket's first poll, without the planner's random spread."""
        return self.planner.plan.delay(self.planner.model_for(tenant_id), 0, 0.0, draw=0.5)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="yfdocs-dispatcher", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopped.set()
