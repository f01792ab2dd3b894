"""`yfdocs retry`: send a failed or expired job again."""

from __future__ import annotations

import json

import click

from config import Settings
from intake.producer import retry_job
from models import utcnow
from yfdocs.installation import open_database

__all__ = ["COMMANDS"]


@click.command("retry")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
@click.pass_context
def retry_command(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Queue a failed or expired job again from the start (a fresh upload). Any other job
    is refused (`JobNotRetryable`: one line, exit 2)."""
    settings: Settings = ctx.obj.settings
    engine = open_database(settings, create=False)
    try:
        job = retry_job(engine, job_id, now=utcnow(), reason="sent again by `yfdocs retry`")
        if as_json:
            click.echo(json.dumps({"id": job.id, "state": job.state}))
        else:
            click.echo(f"{job.id} {job.state}")
    finally:
        engine.dispose()


COMMANDS: list[click.Command] = [retry_command]
