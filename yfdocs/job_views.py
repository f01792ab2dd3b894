"""How jobs are shown in a terminal: the rich tables of `yfdocs status`.

The JSON shapes (`yfdocs status --json`, the HTTP intake's answers) live in
`intake.job_json`, so the CLI and the intake agree on field names; the detail view shows
the same fields. Every value a table shows from a job goes through `user_text`: what users
and the API wrote is shown as written, never as markup or terminal control.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from intake.job_json import job_to_dict
from models import JobEvent, JobState, UploadJob
from yfdocs.terminal_text import user_text

__all__ = ["render_job_detail", "render_jobs_table"]

_STATE_STYLES = {
    JobState.QUEUED.value: "cyan",
    JobState.UPLOADING.value: "blue",
    JobState.POLLING.value: "magenta",
    JobState.COMPLETE.value: "green",
    JobState.FAILED.value: "bold red",
    JobState.EXPIRED.value: "red",
    JobState.UNMATCHED.value: "yellow",
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
