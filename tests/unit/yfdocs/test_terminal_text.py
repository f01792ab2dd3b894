"""What users wrote reaches the terminal as written: no markup, no control characters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console, RenderableType

from api_client import DocumentType
from models import JobEvent, UploadJob
from scheduling.token_cache import RefusalRecord
from scheduling.usage import DeliveryOutlook, FleetUsage, TenantWindow
from yfdocs.demo import DemoSample, _print_outcomes
from yfdocs.fleet_view import FleetSummary, render_fleet
from yfdocs.job_commands import BackfillReport, _print_backfill_report
from yfdocs.job_views import render_job_detail, render_jobs_table
from yfdocs.terminal_text import user_text, visible

MARKUP = "[link=https://evil.example]Click here[/link]"
ESCAPE = "\x1b[2J\x1b]8;;https://evil.example\x07"  # clear the screen; an OSC 8 link
HOSTILE = f"{MARKUP} {ESCAPE}end"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def rendered(renderable: RenderableType) -> str:
    """What a colour-less terminal shows, raw: ESC would be there if anything sent one."""
    console = Console(force_terminal=True, color_system=None, record=True, width=400)
    with console.capture() as captured:
        console.print(renderable)
    return captured.get()


def assert_shown_as_written(output: str) -> None:
    assert "\x1b" not in output
    assert "\x07" not in output
    assert MARKUP in output
    assert "\\x1b[2J\\x1b]8;;https://evil.example\\x07end" in output


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("plain text", "plain text"),
        ("a\x1b[31mb", "a\\x1b[31mb"),
        ("one\nline\r", "one\\x0aline\\x0d"),
        ("\x9bcsi \x7fdel", "\\x9bcsi \\x7fdel"),
        ("name\u202efdp.exe", "name\\u202efdp.exe"),
        ("undecodable \udcff byte", "undecodable \\udcff byte"),
        ("line\u2028separator", "line\\u2028separator"),
        ("café, 証明書, \U0001f393", "café, 証明書, \U0001f393"),
    ],
)
def test_visible_shows_control_characters_as_escapes(given: str, shown: str) -> None:
    assert visible(given) == shown


def test_user_text_is_never_markup() -> None:
    output = rendered(user_text(HOSTILE))
    assert_shown_as_written(output)
    assert rendered(user_text(None)) == "\n"


def hostile_job() -> UploadJob:
    return UploadJob(
        id="0123456789abcdef0123456789abcdef0123",
        tenant_id="4028868",
        person_code="P1",
        document_type="diploma",
        description=HOSTILE,
        file_name="x.pdf",
        original_file_name=HOSTILE,
        size_bytes=1,
        sha256="0" * 64,
        storage_key="00/00/" + "0" * 64 + ".pdf",
        idempotency_key=f"caller:4028868:{HOSTILE}",
        ticket_id=ESCAPE,
        last_error=HOSTILE,
        last_correlation_id=HOSTILE,
        created_at=NOW,
        updated_at=NOW,
    )


def test_the_jobs_table_shows_errors_and_tickets_as_written() -> None:
    output = rendered(render_jobs_table([hostile_job()]))
    assert "\x1b" not in output
    assert MARKUP[:25] in output  # the error column is cut at 30 characters
    assert "\\x1b[2J" in output


def test_job_detail_and_history_show_every_field_as_written() -> None:
    job = hostile_job()
    event = JobEvent(job_id=job.id, at=NOW, to_state="failed", reason=HOSTILE, attempt=1)
    event.correlation_id = ESCAPE
    output = rendered(render_job_detail(job, [event]))
    assert_shown_as_written(output)
    assert output.count(MARKUP) >= 5  # description, both names, key, error, reason, ...


def test_the_fleet_panel_shows_a_refusal_reason_as_written() -> None:
    usage = FleetUsage(
        calls_today=0,
        daily_quota=6000,
        quota_left=6000,
        quota_resets_at=NOW,
        token_requests_this_month=1,
        token_monthly_budget=400,
        backoff_until=None,
        calls_last_hour=0,
    )
    refusal = RefusalRecord(
        cache_key="url|client|4028868", reason=HOSTILE, refusals=2, refused_until=NOW
    )
    summary = FleetSummary(
        at=NOW,
        jobs_by_state={"queued": 1},
        usage=usage,
        backlog_documents=1,
        calls_needed=3,
        pace_calls_per_hour=100.0,
        estimated_delivery_at=NOW,
        waiting_for_quota=False,
        credentials_refused=(refusal,),
        outlook=DeliveryOutlook(
            budget=400,
            used=3,
            reserve=40,
            window_start=NOW,
            window_end=NOW,
            pace_per_day=12.0,
            windows=(TenantWindow(tenant_id=HOSTILE, open_until=NOW, next_at=None, waiting=1),),
            backlog_by_class={"poll": 0, "live": 1, "backfill_or_retry": 0},
            backlog_by_tenant={HOSTILE: 1},
            oldest_job_id=None,
            oldest_waiting_since=None,
            oldest_window_at=None,
        ),
    )
    output = rendered(render_fleet(summary))
    assert_shown_as_written(output)
    assert "tenant 4028868" in output


def test_the_backfill_report_shows_files_and_reasons_as_written(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "400")
    report = BackfillReport(rejected=[{"row": 2, "file": HOSTILE, "error": HOSTILE}])
    _print_backfill_report(report)
    output = capsys.readouterr().out
    assert "\x1b[2J" not in output
    assert "\x07" not in output
    assert output.count(MARKUP) == 2


def test_the_demo_outcome_table_shows_api_messages_as_written() -> None:
    console = Console(force_terminal=True, color_system=None, record=True, width=400)
    sample = DemoSample("A label", Path(__file__), "P1", DocumentType.DIPLOMA, "failed")
    job = hostile_job()
    job.state = "failed"
    with console.capture() as captured:
        _print_outcomes(console, [sample], {job.id: sample}, {job.id: job}, {})
    output = captured.get()
    assert_shown_as_written(output)
