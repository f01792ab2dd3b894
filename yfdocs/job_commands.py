"""Commands that act on jobs: enqueue, status, backfill.

Exit status: 0 done; 2 input refused (one line on stderr, nothing stored for that input);
1 something else went wrong. All three build their database, store and publisher in
`ProducerServices.from_settings`, so they see the same data the workers do.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import Engine

from api_client import DocumentType
from config import Settings
from intake.job_json import event_to_dict, job_to_dict
from intake.producer import EnqueueRequest, EnqueueResult, enqueue_document
from intake.storage import FilesystemDocumentStore
from intake.validation import EnqueueRejected, InvalidPdf
from messaging import JobPublisher, PublishError
from models import JobState, Priority, make_engine, migrate, utcnow
from models.jobs import AmbiguousJobId, JobNotFound, find_job, job_events, list_jobs
from worker.celery_app import CeleryPublisher, create_celery_app
from yfdocs.fleet_view import fleet_summary, render_fleet
from yfdocs.job_views import render_job_detail, render_jobs_table

__all__ = ["COMMANDS", "ProducerServices"]

MANIFEST_COLUMNS = ("file", "personCode", "type", "description", "validFrom", "key")
REQUIRED_MANIFEST_COLUMNS = ("file", "personCode", "type")
EXIT_REFUSED = 2


@dataclass
class ProducerServices:
    """The engine, document store and publisher a producer command needs, built once."""

    settings: Settings
    engine: Engine
    store: FilesystemDocumentStore
    publisher: JobPublisher

    @classmethod
    def from_settings(cls, settings: Settings) -> ProducerServices:
        """Open the database (migrating the embedded SQLite), the store and the broker."""
        logging.getLogger("pypdf").setLevel(logging.ERROR)  # its notes are not our errors
        if settings.uses_filesystem_broker:  # "no hostname supplied" is right for it
            logging.getLogger("kombu.connection").setLevel(logging.ERROR)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        engine = make_engine(url)
        if url.startswith("sqlite"):
            migrate(engine)
        publisher = CeleryPublisher(create_celery_app(settings))
        return cls(
            settings=settings,
            engine=engine,
            store=FilesystemDocumentStore(settings.storage_dir),
            publisher=publisher,
        )

    def enqueue(self, request: EnqueueRequest) -> EnqueueResult:
        return enqueue_document(
            request,
            engine=self.engine,
            store=self.store,
            publisher=self.publisher,
            settings=self.settings,
        )

    def close(self) -> None:
        self.engine.dispose()


class _GiveUpAfterFirstFailure:
    """A publisher that stops calling a dead broker: backfill leaves the rest to the sweeper."""

    def __init__(self, inner: JobPublisher) -> None:
        self._inner = inner
        self.broker_down = False

    def publish_upload(self, job_id: str, countdown: float | None = None) -> None:
        if self.broker_down:
            raise PublishError("broker was down earlier in this run")
        try:
            self._inner.publish_upload(job_id, countdown=countdown)
        except PublishError:
            self.broker_down = True
            raise

    def publish_poll(self, job_id: str, countdown: float | None = None) -> None:
        raise PublishError("a backfill publishes uploads only")


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.find_root().obj.settings
    return settings


def _refuse(message: str) -> NoReturn:
    """One line on stderr, exit 2: the caller's input was refused."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_REFUSED)


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, ensure_ascii=False))


@click.command("enqueue")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=True))
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
    file: Path,
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
    nothing stored. A broker that is down does not fail the command: the job stays queued
    and the sweeper publishes it.
    """
    services = ProducerServices.from_settings(_settings(ctx))
    try:
        result = services.enqueue(
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
            )
        )
    except EnqueueRejected as exc:
        _refuse(exc.message)
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
    services_settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = services_settings.resolved_database_url
    engine = make_engine(url)
    try:
        if url.startswith("sqlite"):
            migrate(engine)
        if job_id is not None:
            try:
                job = find_job(engine, job_id)
            except (JobNotFound, AmbiguousJobId) as exc:
                _refuse(str(exc))
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
    unpublished: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": len(self.created),
            "already_present": len(self.already_present),
            "rejected": len(self.rejected),
            "unpublished": self.unpublished,
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
                _refuse(
                    f"{manifest}: the header lacks column(s) {', '.join(missing)}; "
                    f"expected {','.join(MANIFEST_COLUMNS)}"
                )
            reader.fieldnames = header
            return [
                (reader.line_num, {k: (v or "").strip() for k, v in row.items() if k})
                for row in reader
            ]
    except FileNotFoundError:
        _refuse(f"{manifest} does not exist")
    except (UnicodeDecodeError, csv.Error) as exc:
        _refuse(f"{manifest} is not a readable UTF-8 CSV file: {exc}")


@click.command("backfill")
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
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
    services = ProducerServices.from_settings(_settings(ctx))
    publisher = _GiveUpAfterFirstFailure(services.publisher)
    services.publisher = publisher
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
        ) as progress:
            task = progress.add_task("rows", total=len(rows))
            for row_number, row in rows:
                _backfill_row(services, manifest, row_number, row, tenant_id, report)
                progress.advance(task)
    finally:
        services.close()
    report.unpublished = sum(1 for job in report.created if job["published_at"] is None)
    if as_json:
        _echo_json(report.as_dict())
    else:
        _print_backfill_report(report, broker_down=publisher.broker_down)
    if report.rejected:
        raise SystemExit(EXIT_REFUSED)


def _backfill_row(
    services: ProducerServices,
    manifest: Path,
    row_number: int,
    row: dict[str, str],
    tenant_id: str | None,
    report: BackfillReport,
) -> None:
    file_cell = row.get("file", "")
    try:
        if not file_cell:
            raise InvalidPdf("file", "the file column is empty")
        result = services.enqueue(
            EnqueueRequest(
                document=manifest.parent / file_cell,
                person_code=row.get("personCode", ""),
                document_type=row.get("type", ""),
                description=row.get("description") or None,
                valid_from=row.get("validFrom") or None,
                tenant_id=tenant_id,
                idempotency_key=row.get("key") or None,
                priority=Priority.BACKFILL,
                source="backfill",
            )
        )
    except EnqueueRejected as exc:
        report.rejected.append(
            {"row": row_number, "file": file_cell, "field": exc.field, "error": exc.message}
        )
        return
    entry = {"row": row_number, "file": file_cell, **job_to_dict(result.job)}
    (report.created if result.created else report.already_present).append(entry)


def _print_backfill_report(report: BackfillReport, *, broker_down: bool) -> None:
    console = Console()
    if report.rejected:
        refused = Table(title="rejected rows (header is row 1)", header_style="bold red")
        refused.add_column("row", justify="right")
        refused.add_column("file", overflow="fold")
        refused.add_column("why", overflow="fold")
        for rejection in report.rejected:
            refused.add_row(str(rejection["row"]), rejection["file"], rejection["error"])
        console.print(refused)
    console.print(
        f"created: {len(report.created)}  already present: {len(report.already_present)}  "
        f"rejected: {len(report.rejected)}"
    )
    if broker_down:
        console.print(
            f"the broker was unreachable: {report.unpublished} new job(s) stay queued "
            "for the sweeper to publish"
        )


COMMANDS: list[click.Command] = [enqueue_command, status_command, backfill_command]
