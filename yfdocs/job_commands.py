"""Commands that act on jobs: enqueue, status, backfill.

Exit status: 0 done; 2 input refused (one line on stderr, nothing stored for that input);
1 something else went wrong. Input is validated before anything is opened, so a refused
input creates no data dir or database; then the producers build their
database and store in `ProducerServices.from_settings` and `status` opens the database it
finds (`yfdocs.installation`), so they see the same data the workers do.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from api_client import DocumentType
from config import Settings
from intake.job_json import event_to_dict, job_to_dict
from intake.producer import (
    EnqueueRequest,
    EnqueueResult,
    ValidatedDocument,
    enqueue_validated,
    validate_request,
)
from intake.storage import DocumentStore
from intake.stores import open_document_store
from intake.validation import EnqueueRejected, InvalidPdf, describe_file_error
from models import JobState, Priority, utcnow
from models.jobs import find_job, job_events, list_jobs
from yfdocs.fleet_view import fleet_summary, render_fleet
from yfdocs.installation import open_database
from yfdocs.job_views import render_job_detail, render_jobs_table
from yfdocs.refusals import EXIT_REFUSED, is_refusal, refuse
from yfdocs.terminal_text import user_text

__all__ = ["COMMANDS", "ProducerServices"]

MANIFEST_COLUMNS = ("file", "personCode", "type", "description", "validFrom", "key")
REQUIRED_MANIFEST_COLUMNS = ("file", "personCode", "type")

log = logging.getLogger(__name__)


@dataclass
class ProducerServices:
    """The engine and document store a producer command needs, built once."""

    settings: Settings
    engine: Engine
    store: DocumentStore

    @classmethod
    def from_settings(cls, settings: Settings) -> ProducerServices:
        """Open the database (creating and migrating the embedded SQLite; a fleet's must be
        at head already) and the store."""
        engine = open_database(settings, create=True)
        return cls(
            settings=settings,
            engine=engine,
            store=open_document_store(settings, engine),
        )

    def enqueue(self, document: ValidatedDocument) -> EnqueueResult:
        return enqueue_validated(document, engine=self.engine, store=self.store)

    def close(self) -> None:
        self.engine.dispose()


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.find_root().obj.settings
    return settings


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, ensure_ascii=False))


@click.command("enqueue")
@click.argument("file", metavar="FILE")  # as typed: `cert.pdf/` names a directory
@click.option("--person", "person_code", required=True, help="The employee's personCode.")
@click.option(
    "--type",
    "document_type",
    required=True,
    help="Document type: " + ", ".join(member.value for member in DocumentType) + ".",
)
@click.option(
    "--description",
    default=None,
    help="Shown in the personnel file (1-255 characters). "
    "Default: '<Type>: <file name without .pdf>', e.g. 'Diploma: First aid 2024'.",
)
@click.option("--valid-from", default=None, metavar="YYYY-MM-DD", help="Default: the API's date.")
@click.option("--tenant", "tenant_id", default=None, help="Default: YFDOCS_TENANT_ID.")
@click.option(
    "--key",
    default=None,
    help="Idempotency key, e.g. the LMS event id. Default: derived from tenant, "
    "personCode, type and the PDF's SHA-256, so the same document is never enqueued twice.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of the id.")
@click.pass_context
def enqueue_command(
    ctx: click.Context,
    file: str,
    person_code: str,
    document_type: str,
    description: str | None,
    valid_from: str | None,
    tenant_id: str | None,
    key: str | None,
    as_json: bool,
) -> None:
    """Validate FILE (a PDF) and queue it for upload to one person's personnel file.

    Prints the job id (with --json: {"id", "state", "created", ...}). Enqueuing the same
    document again prints the existing job. Bad input: exit status 2, one line on stderr,
    nothing stored. Needs no broker: the dispatcher publishes the job when it can start.
    """
    settings = _settings(ctx)
    document = validate_request(
        EnqueueRequest(
            document=file,
            person_code=person_code,
            document_type=document_type,
            description=description,
            valid_from=valid_from,
            tenant_id=tenant_id,
            idempotency_key=key,
            priority=Priority.LIVE,
            source="cli",
        ),
        settings,
    )
    services = ProducerServices.from_settings(settings)
    try:
        result = services.enqueue(document)
    finally:
        services.close()
    if as_json:
        _echo_json({**job_to_dict(result.job), "created": result.created})
    else:
        click.echo(result.job.id)


def _status_console() -> Console:
    """At least 120 columns: the jobs table is unreadable when rich squeezes it into 80."""
    return Console(width=max(120, Console().width))


@click.command("status")
@click.argument("job_id", required=False)
@click.option(
    "--state",
    type=click.Choice([state.value for state in JobState]),
    default=None,
    help="Only jobs in this state.",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--fleet",
    is_flag=True,
    help="Only the fleet: jobs by state, API calls and quota, tokens, backlog and its ETA.",
)
@click.pass_context
def status_command(
    ctx: click.Context,
    job_id: str | None,
    state: str | None,
    limit: int,
    as_json: bool,
    fleet: bool,
) -> None:
    """Show the fleet and jobs, newest first, or one job (JOB_ID or a unique prefix) with its
    history. `--json` prints the jobs as an array; `--fleet --json` the fleet as an object."""
    services_settings = _settings(ctx)
    engine = open_database(services_settings, create=False)
    try:
        if job_id is not None:
            job = find_job(engine, job_id)
            events = job_events(engine, job.id)
            if as_json:
                _echo_json({**job_to_dict(job), "events": [event_to_dict(e) for e in events]})
            else:
                _status_console().print(render_job_detail(job, events))
            return
        if fleet:
            summary = fleet_summary(engine, services_settings, utcnow())
            if as_json:
                _echo_json(summary.as_dict())
            else:
                _status_console().print(render_fleet(summary))
            return
        jobs = list_jobs(engine, state=JobState(state) if state is not None else None, limit=limit)
        if as_json:
            _echo_json([job_to_dict(job) for job in jobs])
        else:
            title = f"{len(jobs)} job(s)" + (f" in state {state}" if state else "")
            console = _status_console()
            console.print(render_fleet(fleet_summary(engine, services_settings, utcnow())))
            console.print(render_jobs_table(jobs, title=title))
    finally:
        engine.dispose()


@dataclass
class BackfillReport:
    """What a backfill run did, row by row."""

    created: list[dict[str, Any]] = field(default_factory=list)
    already_present: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": len(self.created),
            "already_present": len(self.already_present),
            "rejected": len(self.rejected),
            "jobs": self.created + self.already_present,
            "rejections": self.rejected,
        }


def _read_manifest(manifest: Path) -> list[tuple[int, dict[str, str]]]:
    """The manifest's rows with their spreadsheet row numbers (the header is row 1)."""
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [name for name in REQUIRED_MANIFEST_COLUMNS if name not in header]
            if missing:
                refuse(
                    f"{manifest}: the header lacks column(s) {', '.join(missing)}; "
                    f"expected {','.join(MANIFEST_COLUMNS)}"
                )
            reader.fieldnames = header
            return [
                (reader.line_num, {k: (v or "").strip() for k, v in row.items() if k})
                for row in reader
            ]
    except OSError as exc:
        refuse(describe_file_error(str(manifest), exc))
    except (UnicodeDecodeError, csv.Error) as exc:
        refuse(f"{manifest} is not a readable UTF-8 CSV file: {exc}")


@click.command("backfill")
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option("--tenant", "tenant_id", default=None, help="Default: YFDOCS_TENANT_ID.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def backfill_command(
    ctx: click.Context, manifest: Path, tenant_id: str | None, as_json: bool
) -> None:
    """Enqueue historic documents listed in MANIFEST (CSV) at backfill priority.

    Columns: file,personCode,type,description,validFrom,key (file paths relative to the
    manifest's folder; description, validFrom and key may be empty). Live events still go
    first. Safe to run twice: rows already enqueued are reported as already present.
    Exit 0 when every row was accepted or already present, 2 when any row was refused
    (the good rows are enqueued all the same).
    """
    rows = _read_manifest(manifest)
    settings = _settings(ctx)
    services = _ServicesOnDemand(settings)
    report = BackfillReport()
    stderr = Console(stderr=True)
    try:
        with Progress(
            TextColumn("backfill"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
            disable=not stderr.is_terminal,  # a log or a pipe gets the report, not a bar
        ) as progress:
            task = progress.add_task("rows", total=len(rows))
            for row_number, row in rows:
                _backfill_row(services, settings, manifest, row_number, row, tenant_id, report)
                progress.advance(task)
    finally:
        services.close()
    if as_json:
        _echo_json(report.as_dict())
    else:
        _print_backfill_report(report)
    if report.rejected:
        raise SystemExit(EXIT_REFUSED)


class _ServicesOnDemand:
    """The producer's services, opened at the first row that passes validation: a manifest
    whose every row is refused creates no data dir or database."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._services: ProducerServices | None = None

    def get(self) -> ProducerServices:
        if self._services is None:
            self._services = ProducerServices.from_settings(self._settings)
        return self._services

    def close(self) -> None:
        if self._services is not None:
            self._services.close()


# The database or its connection failing is not a row's fault: the run stops, as any
# command does when its database goes away. No broker is involved: the dispatcher
# publishes the jobs.
_OUTAGES = (OperationalError, InterfaceError, DisconnectionError)


def _backfill_row(
    services: _ServicesOnDemand,
    settings: Settings,
    manifest: Path,
    row_number: int,
    row: dict[str, str],
    tenant_id: str | None,
    report: BackfillReport,
) -> None:
    """Enqueue one row, or report it rejected with its reason: whatever goes wrong in a row
    (a refusal, or an error nobody foresaw) stops that row only."""
    file_cell = row.get("file", "")
    try:
        if not file_cell:
            raise InvalidPdf("file", "the file column is empty")
        document = validate_request(
            EnqueueRequest(
                # joined as text: a trailing slash in the cell must still name a directory
                document=os.path.join(manifest.parent, file_cell),
                person_code=row.get("personCode", ""),
                document_type=row.get("type", ""),
                description=row.get("description") or None,
                valid_from=row.get("validFrom") or None,
                tenant_id=tenant_id,
                idempotency_key=row.get("key") or None,
                priority=Priority.BACKFILL,
                source="backfill",
            ),
            settings,
        )
        result = services.get().enqueue(document)
    except EnqueueRejected as exc:
        _reject(report, row_number, file_cell, exc.field, exc.message)
        return
    except _OUTAGES:
        raise
    except Exception as exc:
        if is_refusal(exc):  # no installation, or a schema that needs `yfdocs migrate`
            raise
        log.debug("backfill row %d failed", row_number, exc_info=True)
        _reject(report, row_number, file_cell, None, f"unexpected error: {exc!r}")
        return
    entry = {"row": row_number, "file": file_cell, **job_to_dict(result.job)}
    (report.created if result.created else report.already_present).append(entry)


def _reject(
    report: BackfillReport, row_number: int, file_cell: str, field: str | None, error: str
) -> None:
    report.rejected.append({"row": row_number, "file": file_cell, "field": field, "error": error})


def _print_backfill_report(report: BackfillReport) -> None:
    console = Console()
    if report.rejected:
        refused = Table(title="rejected rows (header is row 1)", header_style="bold red")
        refused.add_column("row", justify="right")
        refused.add_column("file", overflow="fold")
        refused.add_column("why", overflow="fold")
        for rejection in report.rejected:
            refused.add_row(
                str(rejection["row"]), user_text(rejection["file"]), user_text(rejection["error"])
            )
        console.print(refused)
    console.print(
        f"created: {len(report.created)}  already present: {len(report.already_present)}  "
        f"rejected: {len(report.rejected)}"
    )
    if report.created:
        console.print(
            "the new jobs wait at backfill priority; the dispatcher sends them after live work"
        )


COMMANDS: list[click.Command] = [enqueue_command, status_command, backfill_command]
