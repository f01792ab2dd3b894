"""`yfdocs retry`: send a failed or expired job again."""

from __future__ import annotations

import json

import click

from config import Settings
from intake.producer import retry_job
from models import make_engine, migrate, utcnow
from models.jobs import JobNotRetryable
from worker.celery_app import CeleryPublisher, create_celery_app
from yfdocs.terminal_text import visible

__all__ = ["COMMANDS"]


@click.command("retry")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
@click.pass_context
def retry_command(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Queue a failed or expired job again from the start (a fresh upload)."""
    settings: Settings = ctx.obj.settings
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate(engine)
        publisher = CeleryPublisher(create_celery_app(settings))
        try:
            job = retry_job(
                engine, publisher, job_id, now=utcnow(), reason="sent again by `yfdocs retry`"
            )
        except JobNotRetryable as exc:
            click.echo(f"yfdocs retry: {visible(str(exc))}", err=True)
            ctx.exit(2)
        if as_json:
            click.echo(json.dumps({"id": job.id, "state": job.state}))
        else:
            click.echo(f"{job.id} {job.state}")
    finally:
        engine.dispose()


COMMANDS: list[click.Command] = [retry_command]
