"""The fleet's metrics, read from a database the real upload and poll steps wrote.

The steps run against the worker's unit harness (a real database, scripted API answers),
so the outcomes counted here are the ones the steps really record, in their own words. Each
test runs on SQLite and on PostgreSQL: the queries use each dialect's date arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api_client import NotFoundError, ServerError
from messaging import POLL_TASK, UPLOAD_TASK
from models import Priority, UploadJob, make_engine
from models.workers import record_heartbeat, record_stopped
from monitoring.exposition import metrics_registry, render
from scheduling.deferrals import QuotaExhausted
from scheduling.ledger import complete_call, record_call
from scheduling.token_windows import grant_window
from tests.plugins.dispatch_fixtures import open_window
from tests.unit.worker.conftest import TENANT, Harness, status
from worker.poll_step import poll_job
from worker.upload_step import upload_job

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
CLASSES = ("poll", "live", "backfill_or_retry")


def scrape(h: Harness, **options: Any) -> Samples:
    registry = metrics_registry(h.engine, h.rt.settings, clock=h.rt.clock, **options)
    body, content_type = render(registry)
    assert content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def call(
    engine: Engine, at: datetime, kind: str, status_code: int | None, limit: str | None = None
) -> None:
    with engine.begin() as connection:
        call_id = record_call(connection, at=at, kind=kind, tenant_id=TENANT)
        complete_call(
            connection,
            call_id,
            status_code=status_code,
            duration=timedelta(milliseconds=40),
            limit_name=limit,
        )


def poll(h: Harness, job_id: str, answer: Any, seconds: float = 30) -> None:
    h.advance(seconds)
    h.client.status_answers.append(answer)
    poll_job(h.rt, job_id)


@pytest.fixture
def h(make_harness: Callable[..., Harness], database_url: str, db_engine: Engine) -> Harness:
    """The harness on this module's database of each kind, emptied for the test."""
    return make_harness(database_url=database_url)


@pytest.fixture
def fleet(h: Harness) -> Harness:
    """Jobs that ended every way a step can end them, a ledger and two workers."""
    delivered = h.polling_job("tkt-done")
    poll(h, delivered, status("InProgress"))
    poll(h, delivered, status("Complete"), seconds=60)  # 90 s after its upload
    rejected = h.polling_job("tkt-locked")
    poll(h, rejected, status("Failed", ["the personnel file is locked"]))
    checked = h.polling_job("tkt-flaky")
    poll(h, checked, ServerError("GET -> 503", status_code=503))
    poll(h, checked, QuotaExhausted(h.rt.clock() + timedelta(hours=1)), seconds=61)
    expiring = h.polling_job("tkt-slow")
    poll(h, expiring, status("InProgress"), seconds=h.rt.settings.poll_deadline + 1)

    retried = h.enqueue(person_code="30003")
    h.client.upload_answers.append(ServerError("POST -> 500", status_code=500))
    upload_job(h.rt, retried)
    refused = h.enqueue(person_code="40004")
    h.client.upload_answers.append(NotFoundError("no such person", status_code=404))
    upload_job(h.rt, refused)
    h.enqueue(priority=Priority.BACKFILL, person_code="50005")

    now = h.rt.clock()
    call(h.engine, now, "upload", 200)
    call(h.engine, now, "status", 200)
    call(h.engine, now, "status", 429, "spike")
    call(h.engine, now, "status", 429, None)
    call(h.engine, now, "token", 200)
    record_heartbeat(h.engine, "worker@fresh", pid=1, now=now - timedelta(seconds=10))
    record_heartbeat(h.engine, "worker@stale", pid=2, now=now - timedelta(minutes=10))
    record_heartbeat(h.engine, "worker@stopped", pid=3, now=now - timedelta(seconds=20))
    record_stopped(h.engine, "worker@stopped", now=now - timedelta(seconds=5))
    return h


def test_jobs_by_state_and_tenant_name_every_state(fleet: Harness) -> None:
    samples = scrape(fleet)

    jobs = {labels: count for (name, labels), count in samples.items() if name == "yfdocs_jobs"}
    assert jobs[(("state", "complete"), ("tenant", TENANT))] == 1
    assert jobs[(("state", "failed"), ("tenant", TENANT))] == 2
    assert jobs[(("state", "expired"), ("tenant", TENANT))] == 1
    assert jobs[(("state", "polling"), ("tenant", TENANT))] == 1
    assert jobs[(("state", "queued"), ("tenant", TENANT))] == 2
    assert jobs[(("state", "unmatched"), ("tenant", TENANT))] == 0, "zero, not missing"


def test_uploads_and_polls_by_outcome_from_the_history(fleet: Harness) -> None:
    samples = scrape(fleet)

    uploads = {
        o: value(samples, "yfdocs_uploads_total", outcome=o)
        for o in ("uploaded", "retried", "deferred", "failed")
    }
    assert uploads == {"uploaded": 4, "retried": 1, "deferred": 0, "failed": 1}
    polls = {
        o: value(samples, "yfdocs_polls_total", outcome=o)
        for o in ("complete", "failed", "expired", "in_progress", "check_failed", "deferred")
    }
    assert polls == {
        "complete": 1,
        "failed": 1,
        "expired": 1,
        "in_progress": 1,
        "check_failed": 1,
        "deferred": 1,
    }


def test_tasks_by_celery_exporters_names_fail_where_their_job_ended_badly(
    fleet: Harness,
) -> None:
    samples = scrape(fleet)

    def tasks(metric: str) -> dict[str, float]:
        return {task: samples[(metric, (("name", task),))] for task in (UPLOAD_TASK, POLL_TASK)}

    # Uploads: four uploaded and one retried succeed, the refused person fails.
    # Polls: complete, in progress, check failed and deferred succeed; failed, expired fail.
    assert tasks("celery_task_succeeded_total") == {UPLOAD_TASK: 5, POLL_TASK: 4}
    assert tasks("celery_task_failed_total") == {UPLOAD_TASK: 1, POLL_TASK: 2}


def test_ticket_processing_time_is_a_histogram_of_delivered_tickets(fleet: Harness) -> None:
    samples = scrape(fleet)

    assert value(samples, "yfdocs_ticket_processing_seconds_count") == 1
    assert value(samples, "yfdocs_ticket_processing_seconds_sum") == pytest.approx(90)
    assert value(samples, "yfdocs_ticket_processing_seconds_bucket", le="60") == 0
    assert value(samples, "yfdocs_ticket_processing_seconds_bucket", le="120") == 1
    assert value(samples, "yfdocs_ticket_processing_seconds_bucket", le="+Inf") == 1


def test_the_oldest_waiting_job_per_priority(fleet: Harness) -> None:
    samples = scrape(fleet)

    now = fleet.rt.clock()
    live = value(samples, "yfdocs_oldest_waiting_job_age_seconds", priority="live")
    # The producer stamps jobs with the real clock, which has moved on from START by however
    # long the suite ran before this test: the oldest undelivered live job's own stamp is
    # what its age counts from.
    with Session(fleet.engine) as session:
        oldest = session.exec(
            select(func.min(UploadJob.created_at)).where(
                col(UploadJob.priority) == int(Priority.LIVE),
                col(UploadJob.state).in_(["queued", "uploading", "polling"]),
            )
        ).one()
    assert oldest is not None
    assert live == pytest.approx((now - oldest).total_seconds(), abs=1)
    assert (now - oldest).total_seconds() > 0
    assert value(samples, "yfdocs_oldest_waiting_job_age_seconds", priority="backfill") > 0


def test_api_calls_and_429s_by_limit_from_the_ledger(fleet: Harness) -> None:
    samples = scrape(fleet)

    assert value(samples, "yfdocs_api_calls_total", kind="upload", status="2xx") == 1
    assert value(samples, "yfdocs_api_calls_total", kind="status", status="2xx") == 1
    assert value(samples, "yfdocs_api_calls_total", kind="status", status="429") == 2
    assert value(samples, "yfdocs_api_rate_limited_total", limit="spike") == 1
    assert value(samples, "yfdocs_api_rate_limited_total", limit="unnamed") == 1
    assert value(samples, "yfdocs_api_rate_limited_total", limit="quota") == 0


def test_quota_and_token_budget(fleet: Harness) -> None:
    samples = scrape(fleet)

    used = value(samples, "yfdocs_api_quota_used")
    assert used >= 4, "the ledger's API calls today (token requests do not count)"
    assert value(samples, "yfdocs_api_quota_remaining") == 6000 - used
    assert value(samples, "yfdocs_api_quota_limit") == 6000
    assert value(samples, "yfdocs_token_requests_used") == 1
    assert value(samples, "yfdocs_token_requests_budget") == 400
    assert 0 <= value(samples, "yfdocs_token_budget_elapsed_ratio") <= 1


def test_the_dispatchers_figures_token_pace_windows_and_backlog(
    make_harness: Callable[..., Harness], database_url: str, db_engine: Engine
) -> None:
    # A 30-day budget window: the pacer's burst is one day's share, (400 - 40) / 30 = 12.
    h = make_harness(database_url=database_url, token_budget_window=30 * 86400.0)
    h.enqueue(person_code="10001")
    h.enqueue(person_code="20002", priority=Priority.BACKFILL)
    h.enqueue(person_code="30003", priority=Priority.BACKFILL)
    h.polling_job("tkt-open")
    now = h.rt.clock()
    call(h.engine, now, "token", 200)
    call(h.engine, now, "token", 200)
    open_window(h.engine, TENANT, expires_at=now + timedelta(hours=1))
    open_window(h.engine, "other", expires_at=now + timedelta(seconds=10))  # about to end
    granted = grant_window(h.engine, h.rt.settings, "third", live=True, now=now, reason="t")
    assert granted is not None

    samples = scrape(h)

    assert value(samples, "yfdocs_token_requests_used") == 2, "made; the grant is not"
    assert value(samples, "yfdocs_token_grants_pending") == 1
    assert value(samples, "yfdocs_token_requests_left") == 400 - 2 - 1
    assert value(samples, "yfdocs_token_requests_reserve") == 40
    elapsed = value(samples, "yfdocs_token_budget_elapsed_ratio")
    assert value(samples, "yfdocs_token_requests_allowance") == pytest.approx(
        360 * elapsed + 12, abs=0.01
    )
    days_left = 30 * (1 - elapsed)
    assert value(samples, "yfdocs_token_pace_per_day") == pytest.approx(
        (400 - 3 - 40) / days_left, rel=1e-3
    )
    assert value(samples, "yfdocs_delivery_windows_open") == 1, "a token within the margin"
    backlog = {c: value(samples, "yfdocs_backlog_jobs", **{"class": c}) for c in CLASSES}
    assert backlog == {"poll": 1, "live": 1, "backfill_or_retry": 2}


def test_workers_up_from_their_heartbeats(fleet: Harness) -> None:
    samples = scrape(fleet)

    assert value(samples, "celery_worker_up", hostname="worker@fresh") == 1
    assert value(samples, "celery_worker_up", hostname="worker@stale") == 0
    assert value(samples, "celery_worker_up", hostname="worker@stopped") == 0
    assert value(samples, "yfdocs_workers_consuming") == 1
    assert value(samples, "yfdocs_worker_last_seen_seconds") == pytest.approx(5)
    assert value(samples, "yfdocs_database_up") == 1


def test_a_database_that_does_not_answer_says_so_and_nothing_else(
    h: Harness, tmp_path: Path
) -> None:
    broken = make_engine(f"sqlite:///{tmp_path / 'empty' / 'no-schema.sqlite3'}")
    registry = metrics_registry(broken, h.rt.settings)

    families = {
        family.name for family in text_string_to_metric_families(render(registry)[0].decode())
    }

    assert families == {"yfdocs_database_up", "yfdocs_metrics_scrape_duration_seconds"}
    assert "yfdocs_database_up 0.0" in render(registry)[0].decode()
    broken.dispose()


def test_a_retried_job_waits_from_its_retry(h: Harness) -> None:
    from models.jobs import requeue_finished_job

    job_id = h.enqueue()
    h.client.upload_answers.append(NotFoundError("no such person", status_code=404))
    upload_job(h.rt, job_id)
    retried_at = h.advance(7 * 24 * 3600)  # a week later, someone runs `yfdocs retry`
    requeue_finished_job(h.engine, job_id, reason="retried", now=retried_at)
    h.advance(90)

    samples = scrape(h)

    assert value(samples, "yfdocs_oldest_waiting_job_age_seconds", priority="live") == (
        pytest.approx(90)
    )
