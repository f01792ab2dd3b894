"""Commands of the HTTP intake: `yfdocs intake` (the server), its keys, and the persons
sync that learner mapping reads (`yfdocs sync-persons`).

The intake publishes nothing (the dispatcher sends every job), so the command hands the
app no publisher; it builds the Celery app only to tell `/readyz` how to reach the broker,
which the intake room may not import.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from config import Settings
from intake.callers import (
    InvalidKeyOption,
    add_key,
    list_callers,
    new_static_secret,
    new_webhook_secret,
    revoke_key,
)
from intake.events import IntakeServices
from intake.job_json import iso_timestamp
from intake.person_sync import PersonSyncReport, sync_tenants, tenants_to_sync
from models import make_engine, migrate
from models.intake_keys import IntakeKeyExists
from worker.celery_app import PUBLISH_TIMEOUT_SECONDS, create_celery_app
from worker.runtime import MissingCredentials, build_client, build_governor, process_owner
from yfdocs.installation import open_database

__all__ = ["COMMANDS"]


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.find_root().obj.settings
    return settings


def _service_database(settings: Settings) -> Engine:
    """The server's database, its schema brought to head on any database (a long-lived
    service, as `worker` does)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _broker_check(app: Any) -> Any:
    """A readiness check that connects to `app`'s (Celery's) broker once, within the
    publish timeout."""

    def broker_reachable() -> None:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=PUBLISH_TIMEOUT_SECONDS)

    return broker_reachable


@click.group("intake", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8080, show_default=True)
@click.pass_context
def intake_group(ctx: click.Context, host: str, port: int) -> None:
    """Run the HTTP intake for LMS events (FastAPI under uvicorn, loopback by default).

    Its OpenAPI is at /openapi.json. `yfdocs intake keys ...` manages the callers' keys.
    Put TLS in front of it (a reverse proxy) before it listens beyond loopback.
    """
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from intake.http import create_app

    settings = _settings(ctx)
    if settings.uses_filesystem_broker:  # "no hostname supplied" is right for it
        logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its notes are not our errors
    engine = _service_database(settings)
    celery_app = create_celery_app(settings)
    services = IntakeServices.build(settings, engine)
    try:
        app = create_app(services, readiness={"broker": _broker_check(celery_app)})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"yfdocs intake on http://{host}:{port} (OpenAPI: /openapi.json)", err=True)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            limit_concurrency=settings.intake_max_connections,
            server_header=False,
            timeout_graceful_shutdown=10,
            log_level="info",
        )
    finally:
        engine.dispose()


@intake_group.group("keys")
def keys_group() -> None:
    """The intake's callers: one key per LMS, shown once, stored as a digest."""


MAKE_ONE = "generate"  # what an option given without a value means: make a secret


def _secret_option(value: str | None, make: Any) -> str | None:
    return make() if value == MAKE_ONE else value


@keys_group.command("add")
@click.option("--name", required=True, help="The caller's name (the LMS), unique.")
@click.option("--tenant", "tenants", multiple=True, required=True, help="A tenant it may serve.")
@click.option(
    "--fetch-host",
    "fetch_hosts",
    multiple=True,
    help="A host certificate_url downloads may come from: a name, or an address or network "
    "(which may then be private).",
)
@click.option(
    "--webhook-secret",
    is_flag=False,
    flag_value=MAKE_ONE,
    default=None,
    help="A Standard Webhooks secret (whsec_...); alone: make one and print it once.",
)
@click.option(
    "--static-secret",
    is_flag=False,
    flag_value=MAKE_ONE,
    default=None,
    help="The secret for a fixed header (Moodle's X-Yfdocs-Secret); alone: make one.",
)
@click.option(
    "--canvas-account",
    "canvas_accounts",
    multiple=True,
    help="A Canvas root_account_uuid whose signed events this key takes.",
)
@click.pass_context
def keys_add_command(
    ctx: click.Context,
    name: str,
    tenants: tuple[str, ...],
    fetch_hosts: tuple[str, ...],
    webhook_secret: str | None,
    static_secret: str | None,
    canvas_accounts: tuple[str, ...],
) -> None:
    """Make a caller's key. The key is printed alone on the last line, this once; a made
    webhook or static secret is printed once above it."""
    engine = open_database(_settings(ctx), create=True)
    try:
        made = add_key(
            engine,
            name=name,
            tenants=tenants,
            fetch_hosts=fetch_hosts,
            canvas_accounts=canvas_accounts,
            webhook_secret=_secret_option(webhook_secret, new_webhook_secret),
            static_secret=_secret_option(static_secret, new_static_secret),
        )
    except (InvalidKeyOption, IntakeKeyExists) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    finally:
        engine.dispose()
    click.echo(f"intake key {made.caller.name!r} for tenant(s) {', '.join(made.caller.tenants)}")
    if webhook_secret == MAKE_ONE and made.webhook_secret is not None:
        click.echo(f"webhook secret (shown once): {made.webhook_secret}")
    if static_secret == MAKE_ONE and made.static_secret is not None:
        click.echo(f"static secret for X-Yfdocs-Secret (shown once): {made.static_secret}")
    click.echo("the key (shown once; only its digest is stored):")
    click.echo(made.key)


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def keys_list_command(ctx: click.Context, as_json: bool) -> None:
    """The callers, never a key or a secret: only what each key is for."""
    engine = open_database(_settings(ctx), create=False)
    try:
        callers = list_callers(engine)
    finally:
        engine.dispose()
    rows = [
        {
            "name": caller.name,
            "key_id": caller.key_id,
            "tenants": list(caller.tenants),
            "fetch_hosts": list(caller.fetch_hosts),
            "canvas_accounts": list(caller.canvas_accounts),
            "webhook_secret": caller.has_webhook_secret,
            "static_secret": caller.has_static_secret,
            "created_at": iso_timestamp(caller.created_at),
        }
        for caller in callers
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} intake key(s)", header_style="bold")
    for column in ("name", "key", "tenants", "fetch hosts", "webhook", "static", "created"):
        table.add_column(column)
    for caller in callers:
        table.add_row(
            caller.name,
            f"yfk_{caller.key_id}_…",
            ", ".join(caller.tenants),
            ", ".join(caller.fetch_hosts),
            "yes" if caller.has_webhook_secret else "",
            "yes" if caller.has_static_secret else "",
            str(iso_timestamp(caller.created_at)),
        )
    Console().print(table)


@keys_group.command("revoke")
@click.argument("name")
@click.pass_context
def keys_revoke_command(ctx: click.Context, name: str) -> None:
    """Revoke a caller's key (and its secrets): it stops working at once."""
    engine = open_database(_settings(ctx), create=False)
    try:
        removed = revoke_key(engine, name)
    finally:
        engine.dispose()
    if not removed:
        click.echo(f"error: no intake key named {name!r}", err=True)
        raise SystemExit(2)
    click.echo(f"revoked intake key {name!r}")


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
    the unmatched jobs whose learner is now known (the dispatcher sends them). Calls go
    through the fleet's governor and token windows. Exit 1 when a tenant could not be
    synced."""
    settings = _settings(ctx)
    engine = open_database(settings, create=True)
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
        with client:
            outcomes = sync_tenants(engine, client, chosen, settings=settings)
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps([_report_dict(outcome) for outcome in outcomes], indent=2))
    else:
        for outcome in outcomes:
            click.echo(str(outcome))
    if any(not isinstance(outcome, PersonSyncReport) for outcome in outcomes):
        raise SystemExit(1)


COMMANDS: list[click.Command] = [intake_group, sync_persons_command]
