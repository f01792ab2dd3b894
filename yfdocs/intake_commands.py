"""Commands of the HTTP intake: `yfdocs intake` (the server), its keys, and the persons
sync that learner mapping reads (`yfdocs sync-persons`).

The intake room may not import the worker, so the real publisher (Celery) is built here
and handed to the app factory, as it is to every other producer.
"""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy.engine import Engine

from config import Settings
from intake.person_sync import PersonSyncReport, sync_tenants, tenants_to_sync
from models import make_engine, migrate
from worker.celery_app import CeleryPublisher, create_celery_app
from worker.runtime import MissingCredentials, build_client, build_governor, process_owner

__all__ = ["COMMANDS"]


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.find_root().obj.settings
    return settings


def _open_database(settings: Settings) -> Engine:
    """The database, its schema brought to head on the embedded SQLite (as `enqueue` does)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    engine = make_engine(url)
    if url.startswith("sqlite"):
        migrate(engine)
    return engine


def _report_dict(outcome: object) -> dict[str, Any]:
    if isinstance(outcome, PersonSyncReport):
        return {
            "tenant_id": outcome.tenant_id,
            "full": outcome.full,
            "changed": outcome.changed,
            "deleted": outcome.deleted,
            "skipped": outcome.skipped,
            "persons": outcome.persons,
            "changed_after": (
                None
                if outcome.changed_after is None
                else outcome.changed_after.isoformat().replace("+00:00", "Z")
            ),
            "matched": outcome.rematch.matched,
            "still_unmatched": outcome.rematch.still_unmatched,
        }
    return {"tenant_id": getattr(outcome, "tenant_id", None), "error": str(outcome)}


@click.command("sync-persons")
@click.option(
    "--tenant",
    "tenants",
    multiple=True,
    help="Only this tenant (repeatable). Default: the tenants of the intake's keys and of "
    "unmatched jobs, else YFDOCS_TENANT_ID.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome per tenant as JSON.")
@click.pass_context
def sync_persons_command(ctx: click.Context, tenants: tuple[str, ...], as_json: bool) -> None:
    """Pull persons from Youforce (a delta by changedAfter) for learner mapping, and queue
    the unmatched jobs whose learner is now known. Calls go through the fleet's governor.
    Exit 1 when a tenant could not be synced."""
    settings = _settings(ctx)
    engine = _open_database(settings)
    try:
        try:
            client = build_client(
                settings, engine, build_governor(settings, engine, process_owner())
            )
        except MissingCredentials as exc:
            raise click.UsageError(str(exc)) from None
        chosen = list(tenants) or tenants_to_sync(engine)
        if not chosen and settings.tenant_id:
            chosen = [settings.tenant_id]
        if not chosen:
            raise click.UsageError("no tenant to sync: pass --tenant or set YFDOCS_TENANT_ID")
        publisher = CeleryPublisher(create_celery_app(settings))
        with client:
            outcomes = sync_tenants(engine, client, publisher, chosen)
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps([_report_dict(outcome) for outcome in outcomes], indent=2))
    else:
        for outcome in outcomes:
            click.echo(str(outcome))
    if any(not isinstance(outcome, PersonSyncReport) for outcome in outcomes):
        raise SystemExit(1)


COMMANDS: list[click.Command] = [sync_persons_command]
