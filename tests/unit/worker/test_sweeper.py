"""`sweep`: lease recovery, lost messages handed back to the dispatcher, abandoned broker
queues, retention. The sweeper never publishes: the dispatcher does (`test_dispatcher`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from api_client import BadRequestError
from config import Settings
from models import JobState
from tests.pdf_samples import make_pdf
from tests.unit.worker.conftest import OWNER, Harness, receipt, status
from worker import filesystem_broker, sweeper
from worker.celery_app import (
    CeleryPublisher,
    create_celery_app,
    filesystem_queue_folder,
    job_ids_waiting_in_filesystem_queue,
)
from worker.poll_step import poll_job
from worker.sweeper import SweepReport, abandoned_queue_age, lost_message_grace, sweep
from worker.upload_step import upload_job

DAY = 86400.0
# Settings only: nothing connects to it (the harness's publisher is a fake).
REDIS_BROKER = "redis://127.0.0.1:1/0"


class WorkerKilled(BaseException):
    """Stands in for a worker process dying in the middle of an API call."""


def _killed_mid_upload(h: Harness) -> str:
    job_id = h.enqueue()
    h.client.upload_answers.append(WorkerKilled())
    with pytest.raises(WorkerKilled):
        upload_job(h.rt, job_id)
    return job_id


def _killed_mid_poll(h: Harness) -> str:
    job_id = h.polling_job(next_poll_at=h.now[0])
    h.client.status_answers.append(WorkerKilled())
    with pytest.raises(WorkerKilled):
        poll_job(h.rt, job_id)
    return job_id


def _complete(h: Harness, content: bytes | None = None, person_code: str = "10001") -> str:
    """A job uploaded and completed at the harness's current time."""
    job_id = h.enqueue(content=content, person_code=person_code)
    h.client.upload_answers.append(receipt())
    upload_job(h.rt, job_id)
    h.update(job_id, next_poll_at=h.now[0])
    h.client.status_answers.append(status("Complete"))
    assert poll_job(h.rt, job_id).action == "complete"
    return job_id


def test_an_idle_pass_does_nothing(h: Harness) -> None:
    h.polling_job()  # next poll in 30 s
    report = sweep(h.rt)
    assert report == SweepReport()
    assert str(report) == "sweep: nothing due"


def test_the_sweeper_publishes_nothing_and_needs_no_broker(h: Harness) -> None:
    """Queued jobs, due polls and stale messages are the dispatcher's; retention runs on."""
    old = _complete(h)
    h.advance(h.rt.settings.retention_days * DAY + 1)
    queued = h.enqueue()
    due_poll = h.polling_job(next_poll_at=h.now[0])
    stale = h.enqueue()
    h.update(stale, published_at=h.now[0] - timedelta(seconds=h.rt.settings.republish_after + 1))
    h.publisher.down = True

    report = sweep(h.rt)

    assert report == SweepReport(documents_deleted=1)
    assert h.publisher.calls == 0
    assert h.job(old).document_deleted_at is not None
    assert h.job(queued).published_at is None
    assert h.job(due_poll).published_at is None


# --- lease recovery -----------------------------------------------------------------------


def test_an_expired_upload_lease_is_taken_back_for_the_dispatcher(h: Harness) -> None:
    lost = _killed_mid_upload(h)
    h.advance(100)
    alive = _killed_mid_upload(h)  # its lease runs 100 s longer
    now = h.advance(21)

    report = sweep(h.rt)

    assert report == SweepReport(recovered_uploads=1)
    job = h.job(lost)
    assert job.job_state is JobState.QUEUED
    assert job.lease_owner is None
    assert job.lease_expires_at is None
    last = h.events(lost)[-1]
    assert (last.from_state, last.to_state) == ("uploading", "queued")
    assert last.reason == (
        f"worker {OWNER} lost during upload attempt 1 (lease expired) after its upload call "
        "had started; uploading again. If that call reached Youforce, the document arrives twice"
    )
    assert job.uncertain_deliveries == 1
    assert h.job(alive).job_state is JobState.UPLOADING
    assert h.job(alive).lease_owner == OWNER
    assert "recovered_uploads=1" in str(report)
    h.assert_dispatched_when_due("upload", lost, now)


def test_a_lease_is_not_taken_back_at_the_very_moment_it_ends(h: Harness) -> None:
    job_id = _killed_mid_upload(h)
    h.advance(h.rt.settings.lease_seconds)

    assert sweep(h.rt).recovered_uploads == 0
    assert h.job(job_id).job_state is JobState.UPLOADING


def test_an_expired_poll_lease_is_taken_back_and_polled_at_once(h: Harness) -> None:
    job_id = _killed_mid_poll(h)
    now = h.advance(h.rt.settings.lease_seconds + 1)

    report = sweep(h.rt)

    assert report == SweepReport(recovered_polls=1)
    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.next_poll_at == now
    assert job.lease_owner is None
    assert job.lease_expires_at is None
    note = h.events(job_id)[-1]
    assert (note.from_state, note.to_state) == ("polling", "polling")
    assert note.reason == f"worker {OWNER} lost during a status check; polling again"
    h.assert_dispatched_when_due("poll", job_id, now)

    # the poll that follows works normally
    h.client.status_answers.append(status("Complete"))
    assert poll_job(h.rt, job_id).action == "complete"


# --- messages lost with a killed worker (filesystem broker) -------------------------------


def _message_in_the_broker_folder(h: Harness, job_id: str, *, seconds_ago: float) -> None:
    """Publish the job's message into the harness's real queue folder, as sent that long ago."""
    publisher = CeleryPublisher(create_celery_app(h.rt.settings))
    if h.job(job_id).job_state is JobState.POLLING:
        publisher.publish_poll(job_id)
    else:
        publisher.publish_upload(job_id)
    h.update(job_id, published_at=h.now[0] - timedelta(seconds=seconds_ago))
    assert job_id in job_ids_waiting_in_filesystem_queue(h.rt.settings)


def _taken_by_a_worker(settings: Settings, job_id: str) -> None:
    """A worker receives a message by taking its file out of the queue folder."""
    for path in filesystem_queue_folder(settings).iterdir():
        if job_id in path.name:
            path.unlink()
    assert job_id not in job_ids_waiting_in_filesystem_queue(settings)


def test_a_due_job_whose_message_a_worker_took_and_never_ran_is_sent_again(
    h: Harness,
) -> None:
    grace = lost_message_grace(h.rt.settings)
    now = h.now[0]
    lost = h.enqueue()
    waiting = h.enqueue()
    for job_id in (lost, waiting):
        _message_in_the_broker_folder(h, job_id, seconds_ago=grace + 1)
    _taken_by_a_worker(h.rt.settings, lost)

    report = sweep(h.rt)

    assert report == SweepReport(lost_uploads_redispatched=1)
    assert h.publisher.calls == 0
    assert h.job(lost).published_at is None, "handed back to the dispatcher"
    assert h.job(waiting).published_at == now - timedelta(seconds=grace + 1)
    note = h.events(lost)[-1]
    assert (note.from_state, note.to_state) == ("queued", "queued")
    assert note.reason == (
        f"its message left the broker's queue folder and the job had not started {grace:g}s "
        "after it was due (the worker that took the message stopped); sent again"
    )
    assert "lost_uploads_redispatched=1" in str(report)

    h.dispatch()
    assert h.publisher.sent == [("upload", lost)], "the waiting one's message is alive"
    assert sweep(h.rt).lost_uploads_redispatched == 0, "just sent: not judged again yet"


@pytest.mark.parametrize(
    ("ready", "redispatched"),
    [(0, 1), (1, 0), (None, 0)],
    ids=["broker-empty", "a-message-waits", "broker-unknown"],
)
def test_on_a_real_broker_a_job_is_lost_only_when_the_api_queue_is_empty(
    h: Harness, ready: int | None, redispatched: int
) -> None:
    """RabbitMQ and Redis name no job; only a queue holding nothing at all says that an
    unclaimed job's message is gone. While any message waits, or the broker cannot be
    asked, nothing is judged lost."""
    h.rt.settings.broker_url = SecretStr("redis://127.0.0.1:6379/0")
    assert not h.rt.settings.uses_filesystem_broker
    grace = lost_message_grace(h.rt.settings)
    job_id = h.enqueue()
    h.update(job_id, published_at=h.now[0] - timedelta(seconds=grace + 1))
    just_sent = h.enqueue()
    h.update(just_sent, published_at=h.now[0] - timedelta(seconds=1))
    asked: list[int] = []

    def ready_messages() -> int | None:
        asked.append(1)
        return ready

    report = sweep(h.rt, ready_messages=ready_messages)

    assert asked, "the broker was asked"
    assert report.lost_uploads_redispatched == redispatched
    assert (h.job(job_id).published_at is None) is bool(redispatched)
    assert h.job(just_sent).published_at is not None, "within its grace: not judged"
    if redispatched:
        assert h.events(job_id)[-1].reason == (
            f"its message is not in the broker and the job had not started {grace:g}s after "
            "it was due (the broker holds no message at all: a restart lost it); sent again"
        )


def test_on_a_real_broker_nothing_is_asked_while_no_job_could_be_lost(h: Harness) -> None:
    h.rt.settings.broker_url = SecretStr("redis://127.0.0.1:6379/0")
    h.enqueue()  # never published: the dispatcher's, not the sweeper's

    def ready_messages() -> int | None:
        raise AssertionError("asked the broker with nothing to judge")

    assert sweep(h.rt, ready_messages=ready_messages) == SweepReport()


def test_a_taken_message_counts_as_lost_only_a_grace_after_its_job_is_due(h: Harness) -> None:
    """A job is lost only a grace after it was both sent and due: a worker that took its
    message needs a moment to start it."""
    grace = lost_message_grace(h.rt.settings)
    now = h.now[0]
    just_sent = h.enqueue()
    _message_in_the_broker_folder(h, just_sent, seconds_ago=grace - 1)
    in_backoff = h.enqueue()
    _message_in_the_broker_folder(h, in_backoff, seconds_ago=grace + 60)
    h.update(in_backoff, not_before=now - timedelta(seconds=grace - 1))
    for job_id in (just_sent, in_backoff):
        _taken_by_a_worker(h.rt.settings, job_id)

    assert sweep(h.rt).lost_uploads_redispatched == 0
    assert h.job(just_sent).published_at is not None

    h.advance(2)
    report = sweep(h.rt)

    assert report.lost_uploads_redispatched == 2
    assert h.job(just_sent).published_at is None
    assert h.job(in_backoff).published_at is None


def test_a_job_a_worker_starts_while_the_folder_is_listed_is_not_sent_again(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    grace = lost_message_grace(h.rt.settings)
    job_id = h.enqueue()
    _message_in_the_broker_folder(h, job_id, seconds_ago=grace + 1)
    _taken_by_a_worker(h.rt.settings, job_id)
    real_listing = sweeper.list_queue_folder

    def listing_while_a_worker_starts_the_job(queue_folder: Path) -> dict[str, list[str]]:
        h.client.upload_answers.append(receipt())
        assert upload_job(h.rt, job_id).action.startswith("uploaded")
        return real_listing(queue_folder)

    monkeypatch.setattr(sweeper, "list_queue_folder", listing_while_a_worker_starts_the_job)

    assert sweep(h.rt).lost_uploads_redispatched == 0
    assert h.job(job_id).job_state is JobState.POLLING
    assert not h.events(job_id)[-1].reason.endswith("sent again")


def test_a_poll_whose_message_a_worker_took_and_never_ran_is_sent_again(
    h: Harness,
) -> None:
    grace = lost_message_grace(h.rt.settings)
    now = h.now[0]
    overdue = now - timedelta(seconds=grace + 1)
    lost = h.polling_job(ticket_id="tkt-lost", next_poll_at=overdue)
    waiting = h.polling_job(ticket_id="tkt-waiting", next_poll_at=overdue)
    held_until_due = h.polling_job(ticket_id="tkt-held", next_poll_at=now + timedelta(seconds=20))
    for job_id in (lost, waiting, held_until_due):
        _message_in_the_broker_folder(h, job_id, seconds_ago=grace + 1)
    for job_id in (lost, held_until_due):
        _taken_by_a_worker(h.rt.settings, job_id)

    report = sweep(h.rt)

    assert report == SweepReport(lost_polls_redispatched=1)
    assert h.job(lost).published_at is None
    assert h.events(lost)[-1].reason.endswith("sent again")
    assert h.job(waiting).published_at == overdue
    assert h.job(held_until_due).published_at == overdue

    h.dispatch()
    assert h.publisher.sent == [("poll", lost)]
    assert h.job(lost).published_at == now
    h.client.status_answers.append(status("Complete"))
    assert poll_job(h.rt, lost).action == "complete"


def test_other_brokers_give_back_lost_messages_themselves(
    make_harness: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(broker_url=REDIS_BROKER)

    def no_folder(queue_folder: Path) -> dict[str, list[str]]:
        raise AssertionError("only the filesystem broker has a queue folder")

    monkeypatch.setattr(sweeper, "list_queue_folder", no_folder)
    grace = lost_message_grace(h.rt.settings)
    queued = h.enqueue()
    h.update(queued, published_at=h.now[0] - timedelta(seconds=grace + 60))
    overdue = h.now[0] - timedelta(seconds=grace + 1)
    polling = h.polling_job(next_poll_at=overdue, published_at=overdue)

    report = sweep(h.rt)

    assert report == SweepReport()
    assert h.job(queued).published_at == h.now[0] - timedelta(seconds=grace + 60)
    assert h.job(polling).published_at == overdue


def test_without_a_queue_folder_nothing_is_judged_lost(h: Harness) -> None:
    """Every process makes the folder when it starts; without it this is no broker's view."""
    job_id = h.enqueue()
    h.update(
        job_id, published_at=h.now[0] - timedelta(seconds=lost_message_grace(h.rt.settings) + 60)
    )
    assert not filesystem_queue_folder(h.rt.settings).exists()

    assert sweep(h.rt) == SweepReport()
    assert h.job(job_id).published_at is not None


def test_batch_size_bounds_handing_back_lost_messages(h: Harness) -> None:
    grace = lost_message_grace(h.rt.settings)
    for _ in range(3):
        job_id = h.enqueue()
        _message_in_the_broker_folder(h, job_id, seconds_ago=grace + 1)
        _taken_by_a_worker(h.rt.settings, job_id)

    assert sweep(h.rt, batch_size=2).lost_uploads_redispatched == 2
    assert sweep(h.rt, batch_size=2).lost_uploads_redispatched == 1
    assert sweep(h.rt, batch_size=2).lost_uploads_redispatched == 0


# --- queues whose consumer is gone (filesystem broker) ------------------------------------


@pytest.fixture
def broker_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The monotonic clock that stamps message files and judges their age, moved by hand."""
    now = [80_000.0]
    monkeypatch.setattr(filesystem_broker, "monotonic", lambda: now[0])
    return now


def _event_queue_of_a_killed_consumer(h: Harness) -> str:
    """Bind an event queue as Flower does, and leave it bound as a killed Flower does."""
    app = create_celery_app(h.rt.settings)
    with app.connection_for_write() as connection:
        receiver = app.events.Receiver(connection, handlers={})
        receiver.queue.bind(connection.default_channel).declare()
        return str(receiver.queue.name)


def _events_sent(h: Harness, count: int) -> None:
    """What every worker sends all the time: heartbeats and task events."""
    app = create_celery_app(h.rt.settings)
    with app.connection_for_write() as connection:
        dispatcher = app.events.Dispatcher(connection, enabled=True)
        for _ in range(count):
            dispatcher.send("worker-heartbeat")
        dispatcher.close()


def _files_of(h: Harness, queue: str) -> list[str]:
    return filesystem_broker.list_queue_folder(filesystem_queue_folder(h.rt.settings)).get(
        queue, []
    )


def _bound_to_events(h: Harness) -> list[str]:
    table = h.rt.settings.broker_dir / "control" / "celeryev.exchange"
    return [row[2] for row in json.loads(table.read_text())]


def test_a_killed_consumers_event_queue_is_removed_once_its_oldest_event_is_too_old(
    h: Harness, broker_clock: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    age = abandoned_queue_age(h.rt.settings)
    dead = _event_queue_of_a_killed_consumer(h)
    _events_sent(h, 4)
    broker_clock[0] += age - 10
    fresh = _event_queue_of_a_killed_consumer(h)  # as if a live one: its events are new
    _events_sent(h, 2)

    report = sweep(h.rt)
    assert report.abandoned_queues_removed == 0
    assert len(_files_of(h, dead)) == 6
    assert sorted(_bound_to_events(h)) == sorted([dead, fresh])

    broker_clock[0] += 11
    caplog.set_level(logging.INFO, logger="worker.sweeper")
    report = sweep(h.rt)

    assert report.abandoned_queues_removed == 1
    assert report.abandoned_messages_removed == 6
    assert _files_of(h, dead) == []
    assert _bound_to_events(h) == [fresh]
    assert len(_files_of(h, fresh)) == 2, "the newer queue's events are younger than the limit"
    assert "abandoned_queues_removed=1, abandoned_messages_removed=6" in str(report)
    logged = [record.getMessage() for record in caplog.records]
    assert str(report) in logged
    assert any(dead in message for message in logged), "the log names the queue"

    _events_sent(h, 3)
    assert _files_of(h, dead) == [], "unbound: the workers' events no longer land there"
    assert sweep(h.rt).abandoned_queues_removed == 0


def test_the_task_queue_is_never_removed_however_long_its_messages_wait(
    h: Harness, broker_clock: list[float]
) -> None:
    job_id = h.enqueue()
    _message_in_the_broker_folder(h, job_id, seconds_ago=1)
    broker_clock[0] += 100 * abandoned_queue_age(h.rt.settings)

    report = sweep(h.rt)

    assert report.abandoned_queues_removed == 0
    assert job_id in job_ids_waiting_in_filesystem_queue(h.rt.settings)


def test_the_abandoned_queue_age_follows_the_sweep_interval(tmp_path: Path) -> None:
    """Minutes by default, far above the second a live consumer takes; short for tests."""
    assert abandoned_queue_age(Settings(data_dir=tmp_path, _env_file=None)) == 300
    assert abandoned_queue_age(Settings(data_dir=tmp_path, sweep_interval=1, _env_file=None)) == 20
    assert (
        abandoned_queue_age(Settings(data_dir=tmp_path, sweep_interval=0.1, _env_file=None)) == 10
    )


# --- retention ----------------------------------------------------------------------------


def test_a_finished_jobs_pdf_is_deleted_after_the_retention_period(h: Harness) -> None:
    job_id = _complete(h)
    key = h.job(job_id).storage_key
    assert h.store.exists(key)
    retention = h.rt.settings.retention_days * DAY

    h.advance(retention - 1)
    assert sweep(h.rt).documents_deleted == 0
    assert h.store.exists(key)
    assert h.job(job_id).document_deleted_at is None

    now = h.advance(2)
    report = sweep(h.rt)

    assert report.documents_deleted == 1
    assert not h.store.exists(key)
    assert h.job(job_id).document_deleted_at == now
    assert sweep(h.rt).documents_deleted == 0  # marked: not looked at again


def test_failed_jobs_pdfs_are_deleted_too(h: Harness) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(BadRequestError("-> 400", status_code=400))
    upload_job(h.rt, job_id)
    key = h.job(job_id).storage_key
    h.advance(h.rt.settings.retention_days * DAY + 1)

    assert sweep(h.rt).documents_deleted == 1
    assert not h.store.exists(key)


def test_a_pdf_shared_with_an_unfinished_job_is_kept(h: Harness) -> None:
    content = make_pdf(text="shared by two people")
    finished = _complete(h, content=content, person_code="10001")
    waiting = h.enqueue(content=content, person_code="20002")
    key = h.job(finished).storage_key
    assert h.job(waiting).storage_key == key

    h.advance(h.rt.settings.retention_days * DAY + 1)
    report = sweep(h.rt)

    assert report.documents_deleted == 0
    assert h.store.exists(key)
    assert h.job(finished).document_deleted_at is None, "its file was kept: not deleted"
    assert h.job(waiting).document_deleted_at is None

    # the second job still uploads its PDF
    h.client.upload_answers.append(receipt("tkt-second"))
    assert upload_job(h.rt, waiting).action == "uploaded: ticket tkt-second"
    assert h.client.upload_calls[-1].content == h.store.path(key).read_bytes()


def test_a_pdf_shared_with_a_recently_finished_job_is_kept_until_that_one_is_old(
    h: Harness,
) -> None:
    content = make_pdf(text="shared, finished twice")
    retention = h.rt.settings.retention_days * DAY
    first = _complete(h, content=content, person_code="10001")
    h.advance(10 * DAY)
    second = _complete(h, content=content, person_code="20002")
    key = h.job(first).storage_key

    h.advance(retention - 10 * DAY + 1)  # first is past retention, second is not
    assert sweep(h.rt).documents_deleted == 0
    assert h.store.exists(key)
    assert h.job(first).document_deleted_at is None, "its file was kept: not deleted"
    assert h.job(second).document_deleted_at is None

    h.advance(10 * DAY)
    assert sweep(h.rt).documents_deleted == 1
    assert not h.store.exists(key)
    assert h.job(second).document_deleted_at is not None


def test_a_pdf_shared_only_by_old_finished_jobs_is_deleted(h: Harness) -> None:
    content = make_pdf(text="shared, both old")
    first = _complete(h, content=content, person_code="10001")
    second = _complete(h, content=content, person_code="20002")
    key = h.job(first).storage_key
    now = h.advance(h.rt.settings.retention_days * DAY + 1)

    report = sweep(h.rt)

    assert report.documents_deleted >= 1
    assert not h.store.exists(key)
    assert h.job(first).document_deleted_at == now
    assert h.job(second).document_deleted_at == now


# --- batch size ---------------------------------------------------------------------------


def test_batch_size_bounds_lease_recovery(h: Harness) -> None:
    for _ in range(3):
        _killed_mid_upload(h)
    h.advance(h.rt.settings.lease_seconds + 1)

    assert sweep(h.rt, batch_size=2).recovered_uploads == 2
    assert sweep(h.rt, batch_size=2).recovered_uploads == 1


def test_batch_size_bounds_poll_recovery(h: Harness) -> None:
    for _ in range(3):
        _killed_mid_poll(h)
    h.advance(h.rt.settings.lease_seconds + 1)

    assert sweep(h.rt, batch_size=2).recovered_polls == 2
    assert sweep(h.rt, batch_size=2).recovered_polls == 1


def test_batch_size_bounds_retention(h: Harness) -> None:
    for _ in range(3):
        _complete(h)
    h.advance(h.rt.settings.retention_days * DAY + 1)

    assert sweep(h.rt, batch_size=2).documents_deleted == 2
    assert sweep(h.rt, batch_size=2).documents_deleted == 1
    assert sweep(h.rt, batch_size=2).documents_deleted == 0


def test_sweep_takes_its_time_from_the_argument_when_given(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    job_id = _killed_mid_upload(h)
    later = h.now[0] + timedelta(seconds=h.rt.settings.lease_seconds + 1)

    assert sweep(h.rt).recovered_uploads == 0  # the clock: lease still running
    assert sweep(h.rt, now=later).recovered_uploads == 1
    assert h.events(job_id)[-1].at == later
