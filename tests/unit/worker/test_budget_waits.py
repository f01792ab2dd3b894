"""Jobs wait, never fail, when the fleet has no API call for them; the last calls of the
day go to tickets already uploaded, then to live events, then to backfill."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from rich.console import Console

from models import ApiCall, JobState, Priority, session_scope
from scheduling.deferrals import QuotaExhausted, SlotWaitTimeout
from scheduling.governor import governor_from_settings
from scheduling.quota_policy import upload_must_wait
from tests.unit.worker.conftest import Harness, receipt, status
from worker.poll_step import poll_job
from worker.upload_step import upload_job
from yfdocs.fleet_view import fleet_summary, render_fleet


def _spend_calls(h: Harness, count: int) -> None:
    with session_scope(h.engine) as session:
        for _ in range(count):
            session.add(ApiCall(at=h.now[0], kind="upload", tenant_id="4028868", status_code=200))


def test_an_upload_without_a_call_waits_and_keeps_its_attempts(h: Harness) -> None:
    job_id = h.enqueue()
    until = h.now[0] + timedelta(hours=3)
    h.client.upload_answers.append(QuotaExhausted(until))

    outcome = upload_job(h.rt, job_id)

    job = h.job(job_id)
    assert outcome.action.startswith("deferred until")
    assert job.job_state is JobState.QUEUED
    assert job.attempts == 0, "no call was made, so no attempt was spent"
    assert job.not_before == until
    assert job.lease_owner is None
    assert "daily API call quota spent" in h.events(job_id)[-1].reason
    h.assert_dispatched_when_due("upload", job_id, until)


def test_a_short_wait_for_a_slot_is_sent_again_when_it_ends(h: Harness) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(SlotWaitTimeout(h.now[0] + timedelta(seconds=20)))

    upload_job(h.rt, job_id)

    h.assert_dispatched_when_due("upload", job_id, h.now[0] + timedelta(seconds=20))
    h.client.upload_answers.append(receipt())
    assert upload_job(h.rt, job_id).action.startswith("uploaded")
    assert h.job(job_id).attempts == 1


def test_a_poll_without_a_call_is_moved_not_counted(h: Harness) -> None:
    job_id = h.polling_job(next_poll_at=h.now[0])
    until = h.now[0] + timedelta(seconds=45)
    h.client.status_answers.append(SlotWaitTimeout(until))

    poll_job(h.rt, job_id)

    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.poll_count == 0
    assert job.next_poll_at == until
    h.assert_dispatched_when_due("poll", job_id, until)
    h.client.status_answers.append(status("Complete"))
    poll_job(h.rt, job_id)
    assert h.job(job_id).job_state is JobState.COMPLETE


def test_uploads_leave_the_last_calls_to_uploaded_tickets(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(daily_quota=10)
    h.client.engine = None  # the ledger holds exactly the calls this test spends
    h.polling_job(ticket_id="t-1")
    h.polling_job(ticket_id="t-2")
    _spend_calls(h, 7)  # 3 left, 2 needed by the tickets in flight
    assert upload_must_wait(h.engine, h.rt.settings, priority=Priority.LIVE, now=h.now[0]) is None

    _spend_calls(h, 1)  # 2 left: both kept for the two tickets
    wait = upload_must_wait(h.engine, h.rt.settings, priority=Priority.LIVE, now=h.now[0])
    assert wait is not None
    assert wait.until > h.now[0]
    assert "2 kept for uploaded tickets" in wait.reason


def test_backfill_also_leaves_room_for_waiting_live_events(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(daily_quota=10)
    h.enqueue(priority=Priority.LIVE)
    h.enqueue(priority=Priority.LIVE)
    _spend_calls(h, 8)  # 2 left

    live = upload_must_wait(h.engine, h.rt.settings, priority=Priority.LIVE, now=h.now[0])
    backfill = upload_must_wait(h.engine, h.rt.settings, priority=Priority.BACKFILL, now=h.now[0])

    assert live is None
    assert backfill is not None
    assert "live events" in backfill.reason


def test_a_backfill_job_held_for_the_quota_is_published_after_the_reset(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(daily_quota=4)
    h.enqueue(priority=Priority.LIVE)
    job_id = h.enqueue(priority=Priority.BACKFILL)
    _spend_calls(h, 3)

    outcome = upload_job(h.rt, job_id)

    job = h.job(job_id)
    assert outcome.action.startswith("waiting until")
    assert job.job_state is JobState.QUEUED
    assert job.attempts == 0
    assert job.not_before is not None
    assert job.not_before.hour == 0, "the quota window is the UTC day"
    assert h.client.upload_calls == []


def test_fleet_summary_counts_jobs_calls_and_estimates_delivery(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(daily_quota=100)
    h.client.engine = None  # the ledger holds exactly the calls this test spends
    for _ in range(3):
        h.enqueue()
    h.polling_job(ticket_id="t-9")
    _spend_calls(h, 40)

    summary = fleet_summary(h.engine, h.rt.settings, h.now[0])

    assert summary.jobs_by_state["queued"] == 3
    assert summary.jobs_by_state["polling"] == 1
    assert summary.usage.calls_today == 40
    assert summary.usage.quota_left == 60
    assert summary.backlog_documents == 4
    assert summary.calls_needed == 8  # 3 x 2.2 + 1 x 1.2, rounded up
    assert summary.pace_calls_per_hour == 40.0, "the last hour's pace"
    assert summary.estimated_delivery_at == h.now[0] + timedelta(hours=8 / 40)
    assert summary.as_dict()["quota_left"] == 60


def test_fleet_estimate_spills_into_later_quota_windows(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(daily_quota=10, quota_window=3600)
    for _ in range(10):
        h.enqueue()  # 22 calls needed
    _spend_calls(h, 6)  # 4 left in this window, pace 6 an hour

    summary = fleet_summary(h.engine, h.rt.settings, h.now[0])

    resets = summary.usage.quota_resets_at
    # 4 now, 10 in the next window, 8 in the one after: 8 calls at 6 an hour.
    assert summary.estimated_delivery_at == resets + timedelta(hours=1) + timedelta(hours=8 / 6)


def test_the_fleet_view_shows_the_spacing_learned_from_spike_429s(h: Harness) -> None:
    governor = governor_from_settings(h.engine, h.rt.settings, "host:1", clock=lambda: h.now[0])
    before = fleet_summary(h.engine, h.rt.settings, h.now[0])

    governor.back_off(None, "429 (spike) on a status call", "spike")
    after = fleet_summary(h.engine, h.rt.settings, h.now[0])

    assert before.as_dict()["learned_spacing_s"] == 0.0
    learned = after.as_dict()["learned_spacing_s"]
    assert learned == round(max(0.05 * h.rt.settings.min_interval, 0.005), 4)
    console = Console(record=True, width=200)
    console.print(render_fleet(after))
    assert f"+{learned:.3f} s between calls" in console.export_text()
