"""The sweeper: what keeps the database and the broker in step, run by Celery beat.

The dispatcher (`worker.dispatcher`) publishes all work; the sweeper repairs what a lost
process or message leaves behind. Each pass, bounded by `batch_size` per kind of work and
driven by indexed queries, so its cost follows the work that is due, not the table's size:

1. take back jobs whose lease ran out (a worker killed mid-upload or mid-poll), for the
   dispatcher to send again;
2. hand back to the dispatcher the due jobs whose message is gone: on the filesystem
   broker, what a killed worker took with it (the queue folder names each job); on
   RabbitMQ and Redis, what a broker restart or a publish into a dying connection lost
   (seen when the API queue holds no message at all while jobs published a grace ago
   are still unclaimed);
3. on the filesystem broker, unbind and empty the queues of consumers that are gone (a
   killed Flower's event queue), which would otherwise collect every event for ever;
4. delete stored PDFs of finished jobs after the retention period.

On the filesystem broker a pass lists the queue folder once, for steps 2 and 3.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from config import Settings
from messaging import TASK_QUEUE_NAMES
from models import JobState, record_note
from models import jobs as job_table
from worker.celery_app import (
    broker_transport_options,
    filesystem_queue_folder,
    job_ids_waiting_in_filesystem_queue,
)
from worker.filesystem_broker import (
    abandoned_queues,
    list_queue_folder,
    remove_queues,
)
from worker.runtime import WorkerRuntime
from worker.upload_step import take_back_lost_upload, upload_call_started

__all__ = ["SweepReport", "abandoned_queue_age", "lost_message_grace", "sweep"]

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
# The least time a message may be out of the broker folder, past its job's due time, before
# it counts as lost: a worker that has just taken it may still be waiting for the database.
MIN_LOST_MESSAGE_GRACE_SECONDS = 5.0
# How long a message may wait in a queue other than the task queues before that queue's
# consumer counts as gone, in sweep intervals and at least (see `abandoned_queue_age`).
ABANDONED_QUEUE_SWEEP_INTERVALS = 20
MIN_ABANDONED_QUEUE_AGE_SECONDS = 10.0


@dataclass
class SweepReport:
    """What one pass did; logged by the task and shown in Flower."""

    recovered_uploads: int = 0
    recovered_polls: int = 0
    lost_uploads_redispatched: int = 0
    lost_polls_redispatched: int = 0
    documents_deleted: int = 0
    abandoned_queues_removed: int = 0
    abandoned_messages_removed: int = 0

    def __str__(self) -> str:
        parts = [f"{name}={value}" for name, value in vars(self).items() if value]
        return "sweep: " + (", ".join(parts) if parts else "nothing due")


def sweep(
    rt: WorkerRuntime,
    *,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    ready_messages: Callable[[], int | None] | None = None,
) -> SweepReport:
    """One pass of the sweeper. `ready_messages` counts what waits in a real broker's API
    queue (`worker.celery_app.ready_api_messages`); without it, lost messages on RabbitMQ
    or Redis wait for `YFDOCS_REPUBLISH_AFTER`."""
    now = now or rt.clock()
    report = SweepReport()
    _recover_expired_leases(rt, now, batch_size, report)
    if rt.settings.uses_filesystem_broker:
        queue_folder = _QueueFolder(filesystem_queue_folder(rt.settings))

        def waiting_in_folder() -> set[str] | None:
            files_by_queue = queue_folder.files_by_queue()
            if files_by_queue is None:
                return None
            return job_ids_waiting_in_filesystem_queue(rt.settings, files_by_queue)

        _redispatch_lost_messages(
            rt,
            now,
            batch_size,
            report,
            waiting_in_folder,
            "left the broker's queue folder",
            " (the worker that took the message stopped)",
        )
        _remove_abandoned_queues(rt, report, queue_folder)
    elif ready_messages is not None:
        count = ready_messages

        def waiting_in_broker() -> set[str] | None:
            # Only "none at all" says which messages are gone; while any wait, the
            # workers may still take the ones we look for.
            return set() if count() == 0 else None

        _redispatch_lost_messages(
            rt,
            now,
            batch_size,
            report,
            waiting_in_broker,
            "is not in the broker",
            " (the broker holds no message at all: a restart lost it)",
        )
    _delete_expired_documents(rt, now, batch_size, report)
    lost = report.lost_uploads_redispatched or report.lost_polls_redispatched
    if report.recovered_uploads or report.recovered_polls or lost:
        log.warning("%s", report)
    elif report.abandoned_queues_removed:
        log.info("%s", report)
    return report


def lost_message_grace(settings: Settings) -> float:
    """Seconds a due job's message may be out of the broker folder before it counts as lost.

    Two sweep intervals, and never less than a few seconds: enough for a worker that took
    the message to start the job, short enough that a killed worker delays little.
    """
    return max(2 * settings.sweep_interval, MIN_LOST_MESSAGE_GRACE_SECONDS)


def abandoned_queue_age(settings: Settings) -> float:
    """Seconds a message may wait in a queue other than the task queues, on the filesystem
    broker, before the queue counts as abandoned and is removed.

    A live consumer (Flower, `celery events`, a worker's control queue) takes each message
    within about a second, kombu's polling interval; twenty sweep intervals (five minutes by
    default, never under ten seconds) is far beyond that and costs little disk meanwhile.
    """
    return max(
        ABANDONED_QUEUE_SWEEP_INTERVALS * settings.sweep_interval, MIN_ABANDONED_QUEUE_AGE_SECONDS
    )


class _QueueFolder:
    """The filesystem broker's queue folder, listed at most once per pass, when first needed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._files_by_queue: dict[str, list[str]] | None = None
        self._unreadable = False

    def files_by_queue(self) -> dict[str, list[str]] | None:
        """Message file names by queue; None when the folder cannot be listed (logged once)."""
        if self._files_by_queue is None and not self._unreadable:
            try:
                self._files_by_queue = list_queue_folder(self.path)
            except OSError as exc:
                self._unreadable = True
                log.warning(
                    "cannot list the broker's queue folder; lost messages wait and "
                    "abandoned queues stay: %s",
                    exc,
                )
        return self._files_by_queue


def _recover_expired_leases(
    rt: WorkerRuntime, now: datetime, batch_size: int, report: SweepReport
) -> None:
    for job_id in job_table.expired_lease_ids(rt.engine, now=now, limit=batch_size):
        # Read before the row's lock: on SQLite a second connection would wait for it.
        call_started = upload_call_started(rt, job_id)
        with job_table.locked_job(rt.engine, job_id) as (session, job):
            if job is None or job.lease_expires_at is None or job.lease_expires_at >= now:
                continue
            if job.job_state is JobState.UPLOADING:
                take_back_lost_upload(session, job, now, call_started=call_started)
                report.recovered_uploads += 1
                continue
            lost_owner = job.lease_owner
            job.lease_owner = None
            job.lease_expires_at = None
            job.published_at = None
            if job.job_state is JobState.POLLING:
                job.next_poll_at = now
                record_note(
                    session,
                    job,
                    reason=f"worker {lost_owner} lost during a status check; polling again",
                    now=now,
                )
                report.recovered_polls += 1


def _redispatch_lost_messages(
    rt: WorkerRuntime,
    now: datetime,
    batch_size: int,
    report: SweepReport,
    waiting_job_ids: Callable[[], set[str] | None],
    where_gone: str,
    cause: str,
) -> None:
    """Hand back to the dispatcher the due jobs whose message is gone from the broker.

    A job that is due, unclaimed and published more than a grace ago, whose message is not
    among those waiting (`waiting_job_ids`; None when that cannot be known now), has lost
    it: the filesystem transport forgets a message once a worker receives it, so a killed
    worker takes it along; a broker restart can drop what was published just before.
    `republish_after` alone would leave the job waiting half an hour. Its publish mark is
    cleared, so the next dispatcher pass sends it again. A message that was not lost after
    all runs a step that finds its job taken or moved on, and does nothing.
    """
    grace = lost_message_grace(rt.settings)
    settled = now - timedelta(seconds=grace)

    def candidates(state: JobState, among: set[str] | None = None) -> list[str]:
        return job_table.lost_message_candidates(
            rt.engine, state, now=now, settled=settled, limit=batch_size, among=among
        )

    uploads = candidates(JobState.QUEUED)
    polls = candidates(JobState.POLLING)
    if not uploads and not polls:
        return
    waiting = waiting_job_ids()
    if waiting is None:
        return
    # A job started between the query and the listing has no message but is not lost.
    uploads = candidates(JobState.QUEUED, among=set(uploads) - waiting)
    polls = candidates(JobState.POLLING, among=set(polls) - waiting)
    note = (
        f"its message {where_gone} and the job had not started {grace:g}s after it was "
        f"due{cause}; sent again"
    )
    for state, job_ids in ((JobState.QUEUED, uploads), (JobState.POLLING, polls)):
        for job_id in job_ids:
            if not job_table.mark_for_redispatch(
                rt.engine, job_id, state=state, now=now, note=note
            ):
                continue
            if state is JobState.QUEUED:
                report.lost_uploads_redispatched += 1
            else:
                report.lost_polls_redispatched += 1


def _remove_abandoned_queues(
    rt: WorkerRuntime, report: SweepReport, queue_folder: _QueueFolder
) -> None:
    """Unbind and empty the queues whose consumer is gone, such as a killed Flower's.

    An event consumer binds a queue of its own to the event exchange; once it is killed,
    every event of every worker still lands there as a file that nobody reads, in the folder
    that every worker lists on each poll. The task queues are never touched: their messages
    may rightly wait for a busy or stopped worker, and the database is their record.
    """
    files_by_queue = queue_folder.files_by_queue()
    if not files_by_queue:
        return
    age = abandoned_queue_age(rt.settings)
    abandoned = abandoned_queues(files_by_queue, keep=TASK_QUEUE_NAMES, older_than=age)
    if not abandoned:
        return
    control_folder = Path(broker_transport_options(rt.settings)["control_folder"])
    names = ", ".join(sorted(abandoned))
    try:
        removed = remove_queues(queue_folder.path, control_folder, abandoned)
    except OSError as exc:
        log.warning("cannot remove the abandoned broker queues %s: %s", names, exc)
        return
    report.abandoned_queues_removed += len(abandoned)
    report.abandoned_messages_removed += removed
    log.info(
        "removed the broker queues %s and their %d message files: unread for over %gs, "
        "their consumer is gone",
        names,
        removed,
        age,
    )


def _delete_expired_documents(
    rt: WorkerRuntime, now: datetime, batch_size: int, report: SweepReport
) -> None:
    """Delete stored PDFs of jobs finished before the retention cut-off that no other job
    may still need (storage is content-addressed: one file can serve several jobs)."""

    def delete(key: str) -> bool:
        if not rt.store.exists(key):
            return False
        rt.store.delete(key)
        return True

    report.documents_deleted += job_table.delete_unneeded_documents(
        rt.engine,
        cutoff=now - timedelta(days=rt.settings.retention_days),
        now=now,
        limit=batch_size,
        delete=delete,
    )
