"""The Celery tasks: thin adapters from a job id to the upload and poll steps and the sweeper.

A task's only argument is a job id. It builds nothing itself: the per-process runtime
(engine, API client, store, publisher) is made once after the worker process forks.
"""

from __future__ import annotations

import logging
import os

from celery import Celery, signals

from config import Settings
from intake.person_sync import sync_tenants, tenants_to_sync
from messaging import POLL_TASK, SWEEP_TASK, SYNC_PERSONS_TASK, UPLOAD_TASK
from models import make_engine, utcnow
from worker import shutdown, sweeper
from worker.celery_app import CeleryPublisher, create_celery_app, ready_api_messages
from worker.dispatcher import DispatcherLoop
from worker.poll_step import poll_job
from worker.runtime import WorkerRuntime, process_owner
from worker.task_results import DELIVERY_TASK_OPTIONS, DeliveryResult, report
from worker.upload_step import upload_job

__all__ = ["create_worker_app", "dispatch_with_beat", "register", "runtime_for"]

log = logging.getLogger(__name__)

_runtimes: dict[tuple[int, int], WorkerRuntime] = {}


def runtime_for(app: Celery) -> WorkerRuntime:
    """This process's runtime for `app`, built on first use (after fork, never before)."""
    key = (os.getpid(), id(app))
    runtime = _runtimes.get(key)
    if runtime is None:
        runtime = WorkerRuntime.from_settings(app.yfdocs_settings, CeleryPublisher(app))
        _runtimes[key] = runtime
    return runtime


def create_worker_app(settings: Settings) -> Celery:
    """The Celery app a worker runs: configured for these settings, the tasks registered,
    and the dispatcher started with its beat when the worker embeds one."""
    app = create_celery_app(settings)
    register(app)
    shutdown.install()
    dispatch_with_beat(app)
    return app


def dispatch_with_beat(app: Celery) -> None:
    """Run the dispatcher as a thread of the beat process that `app` starts (embedded in a
    worker or alone): the dispatcher runs with beat, one per deployment, never in a pool."""

    def start(sender: object, **_: object) -> None:
        settings: Settings = app.yfdocs_settings
        loop = DispatcherLoop(
            make_engine(settings.resolved_database_url),
            settings,
            CeleryPublisher(app),
            owner=process_owner(),
            clock=utcnow,
        )
        loop.start_thread()
        log.info("dispatcher started with beat, every %gs", settings.dispatch_interval)

    signals.beat_init.connect(start, weak=False)


def register(app: Celery) -> None:
    """Attach the yfdocs tasks to `app`."""

    @app.task(name=UPLOAD_TASK, ignore_result=True, **DELIVERY_TASK_OPTIONS)  # type: ignore[untyped-decorator]
    def upload_document(job_id: str) -> DeliveryResult:
        """Upload one job's PDF and plan the first poll of its ticket."""
        outcome = upload_job(runtime_for(app), job_id)
        log.info("%s", outcome)
        return report(runtime_for(app), outcome)

    @app.task(name=POLL_TASK, ignore_result=True, **DELIVERY_TASK_OPTIONS)  # type: ignore[untyped-decorator]
    def poll_ticket(job_id: str) -> DeliveryResult:
        """Check one job's ticket and record the answer or schedule the next poll."""
        outcome = poll_job(runtime_for(app), job_id)
        log.info("%s", outcome)
        return report(runtime_for(app), outcome)

    @app.task(name=SWEEP_TASK, ignore_result=True, expires=60)  # type: ignore[untyped-decorator]
    def sweep() -> str:
        """One sweeper pass (Celery beat runs this every YFDOCS_SWEEP_INTERVAL seconds)."""
        report = sweeper.sweep(runtime_for(app), ready_messages=lambda: ready_api_messages(app))
        return str(report)

    # -- learner mapping (the HTTP intake's persons sync) --------------------------------------

    @app.task(name=SYNC_PERSONS_TASK, ignore_result=True, expires=600)  # type: ignore[untyped-decorator]
    def sync_persons() -> str:
        """Pull persons for learner mapping and queue the jobs that now match, for the
        dispatcher to send (beat runs this every YFDOCS_PERSONS_SYNC_INTERVAL); its calls go
        through the fleet's governor and token windows."""
        runtime = runtime_for(app)
        tenants = tenants_to_sync(runtime.engine)
        outcomes = sync_tenants(runtime.engine, runtime.client, tenants, settings=runtime.settings)
        return "; ".join(str(outcome) for outcome in outcomes) or "persons sync: no tenants"
