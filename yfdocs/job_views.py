"""How jobs are shown: the JSON objects of `yfdocs status --json`, and the rich tables.

One place for both, so the CLI, the demo and the intake's answers agree on field names.
The shape of `job_to_dict` is a public interface (DESIGN.md, `yfdocs status --json`).
Every value a table shows from a job goes through `user_text`: what users and the API
wrote is shown as written, never as markup or terminal control.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from models import JobEvent, JobState, Priority, UploadJob
from yfdocs.terminal_text import user_text

__all__ = ["event_to_dict", "job_to_dict", "render_job_detail", "render_jobs_table"]

_STATE_STYLES = {
    JobState.QUEUED.value: "cyan",
    JobState.UPLOADING.value: "blue",
    JobState.POLLING.value: "magenta",
    JobState.COMPLETE.value: "green",
    JobState.FAILED.value: "bold red",
    JobState.EXPIRED.value: "red",
    JobState.UNMATCHED.value: "yellow",
}


def _iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _priority_name(value: int) -> str:
    try:
        return Priority(value).name.lower()
    except ValueError:
        return str(value)


def job_to_dict(job: UploadJob) -> dict[str, Any]:
    """A job as JSON: the fields DESIGN.md promises first, then what helps an operator."""
    return {
        "id": job.id,
        "state": job.state,
        "tenant_id": job.tenant_id,
        "person_code": job.person_code,
        "document_type": job.document_type,
        "ticket_id": job.ticket_id,
        "attempts": job.attempts,
        "error": job.last_error,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "description": job.description,
        "valid_from": _iso(job.valid_from),
        "file_name": job.file_name,
        "original_file_name": job.original_file_name,
        "size_bytes": job.size_bytes,
        "sha256": job.sha256,
        "priority": _priority_name(job.priority),
        "source": job.source,
        "idempotency_key": job.idempotency_key,
        "poll_count": job.poll_count,
        # Attempts whose upload may have reached Youforce although no ticket came back.
        "uncertain_deliveries": job.uncertain_deliveries,
        "last_http_status": job.last_http_status,
        "last_correlation_id": job.last_correlation_id,
        "published_at": _iso(job.published_at),
        "uploaded_at": _iso(job.uploaded_at),
        "next_poll_at": _iso(job.next_poll_at),
        "finished_at": _iso(job.finished_at),
    }


def event_to_dict(event: JobEvent) -> dict[str, Any]:
    """One line of a job's history as JSON."""
    return {
        "at": _iso(event.at),
        "from_state": event.from_state,
        "to_state": event.to_state,
        "reason": event.reason,
        "attempt": event.attempt,
        "http_status": event.http_status,
        "correlation_id": event.correlation_id,
    }


def _state_text(state: str) -> Text:
    return user_text(state, style=_STATE_STYLES.get(state, ""))


def _short_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def render_jobs_table(jobs: Sequence[UploadJob], *, title: str | None = None) -> Table:
    """The jobs as a table: enough to answer "did Jan's diploma arrive, and if not, why?"."""
    table = Table(title=title, show_lines=False, header_style="bold")
    table.add_column("id", no_wrap=True, min_width=8)
    table.add_column("state", no_wrap=True, min_width=9)
    table.add_column("person", no_wrap=True, min_width=6)
    table.add_column("type", no_wrap=True, min_width=11)
    table.add_column("ticket", no_wrap=True, min_width=8)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True, min_width=19)
    table.add_column("error", overflow="ellipsis", no_wrap=True, max_width=30)
    for job in jobs:
        table.add_row(
            job.id[:8],
            _state_text(job.state),
            user_text(job.person_code),
            user_text(job.document_type),
            user_text((job.ticket_id or "")[:8]),
            _tries(job),
            _short_time(job.created_at),
            user_text(job.last_error),
        )
    return table


def _tries(job: UploadJob) -> str:
    """Attempts, and how many of them may have arrived without a ticket (a duplicate risk)."""
    if job.uncertain_deliveries:
        return f"{job.attempts} ({job.uncertain_deliveries} may have arrived)"
    return str(job.attempts)


def render_job_detail(job: UploadJob, events: Sequence[JobEvent]) -> RenderableType:
    """One job's fields and its whole history, for `yfdocs status JOB_ID`."""
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column(overflow="fold")
    for name, value in job_to_dict(job).items():
        fields.add_row(name, _state_text(job.state) if name == "state" else user_text(value))
    history = Table(title="history", header_style="bold")
    history.add_column("at (UTC)", no_wrap=True)
    history.add_column("from")
    history.add_column("to")
    history.add_column("attempt", justify="right")
    history.add_column("http", justify="right")
    history.add_column("correlationId", overflow="fold")
    history.add_column("reason", overflow="fold")
    for event in events:
        history.add_row(
            _short_time(event.at),
            user_text(event.from_state),
            _state_text(event.to_state),
            str(event.attempt),
            "" if event.http_status is None else str(event.http_status),
            user_text(event.correlation_id),
            user_text(event.reason),
        )
    return Group(fields, Text(""), history)
