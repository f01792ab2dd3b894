"""`yfdocs documents move --to STORE`: move the fleet's stored PDFs to another store.

The switch is recorded in the database, which every process reads, so the fleet follows
it while it runs; the command then names the setting to change so that the configuration
agrees (`intake.stores.moving` has the steps). Exit status: 0 moved (or nothing to move);
2 refused before anything changed (a store that is no store, a move already under way to
another, no installation where the settings point, a schema not at head: one line, as
every refusal, `yfdocs.refusals`); 1 a copy failed (run it again: it continues).
"""

from __future__ import annotations

import click

from config import Settings, StoreLocation
from intake.stores import MoveFailed, MoveReport, move_documents
from yfdocs.installation import open_database
from yfdocs.refusals import refuse

__all__ = ["COMMANDS"]


@click.group("documents")
def documents_group() -> None:
    """Stored PDFs: where the fleet keeps them."""


@documents_group.command("move")
@click.option(
    "--to",
    "target_text",
    required=True,
    metavar="STORE",
    help="filesystem, postgres or s3://bucket/prefix (S3: the AWS_* variables say where).",
)
@click.pass_context
def move_command(ctx: click.Context, target_text: str) -> None:
    """Copy every stored PDF a job still needs to STORE, verify each copy by its SHA-256,
    and switch the fleet over. Safe to interrupt and to run again."""
    settings: Settings = ctx.find_root().obj.settings
    try:
        target = StoreLocation.parse(target_text)
    except ValueError as exc:
        refuse(f"--to: {exc}")
    # Only documents that exist can move: no installation is created for them (the
    # embedded database migrates itself; a fleet's must be at head, `yfdocs migrate`).
    engine = open_database(settings, create=False)
    try:
        report = move_documents(
            settings, engine, target, progress=lambda line: click.echo(line, err=True)
        )
    except MoveFailed as exc:
        click.echo(f"yfdocs documents move: {exc}", err=True)
        ctx.exit(1)
    finally:
        engine.dispose()
    for line in _summary(report, settings):
        click.echo(line)


def _summary(report: MoveReport, settings: Settings) -> list[str]:
    gone = len(report.missing)
    lines = []
    if report.already_there:
        lines.append(
            f"the fleet's documents are in {report.target} already: {report.present} that jobs "
            f"need are there, {gone} missing"
        )
    else:
        lines.append(
            f"moved the documents from {report.source} to {report.target}: {report.copied} "
            f"copied, {report.present} there already (verified), {gone} gone from both"
        )
        lines.append(
            f"the database names {report.target} as the fleet's store: every process uses it "
            f"now; {report.source} keeps its copies, which nothing reads any more"
        )
    lines += [f"missing: {key} (its job fails when it is uploaded)" for key in report.missing]
    if str(settings.document_store_location) != report.target:
        lines.append(f"set YFDOCS_DOCUMENT_STORE={report.target} in every process's configuration")
    if report.target == "filesystem" and settings.uses_postgres_database:
        lines.append(
            "the filesystem store is each process's own data dir: every producer and worker "
            f"must mount this one ({settings.storage_dir})"
        )
    return lines


COMMANDS: list[click.Command] = [documents_group]
