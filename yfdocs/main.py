"""The `yfdocs` command line: one group, commands grouped by what they act on.

Settings are read here, at the entry point, and passed down; exit status 2 means the
input was refused (nothing stored), 1 that something went wrong on the way.
"""

from __future__ import annotations

import logging
from typing import Any

import click
from pydantic import ValidationError

from config import Settings
from yfdocs.refusals import is_refusal, refuse

__all__ = ["main"]


class YfdocsGroup(click.Group):
    """The command group; a refusal raised by any command becomes one line and exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if is_refusal(exc):
                refuse(str(exc))
            raise


class CliContext:
    """What every command gets: the settings, read once at the entry point."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings


@click.group(cls=YfdocsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """yfdocs: deliver LMS documents into Youforce personnel files."""
    from monitoring.logs import configure_logging

    settings = _read_settings()
    configure_logging(settings, max(logging.WARNING - 10 * verbose, logging.DEBUG))
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its notes on a file are not ours
    ctx.obj = CliContext(settings)


def _read_settings() -> Settings:
    """The settings, or one line naming each bad YFDOCS_ variable (never its value: it
    may be a secret) and exit 2."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"YFDOCS_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            if error["loc"]
            else error["msg"]
            for error in exc.errors(include_input=False)
        ]
        refuse("invalid settings: " + "; ".join(problems))


def _register_commands() -> None:
    from yfdocs import (
        document_commands,
        intake_commands,
        job_commands,
        monitoring_commands,
        recovery_commands,
        service_commands,
    )

    for module in (
        job_commands,
        recovery_commands,
        service_commands,
        monitoring_commands,
        document_commands,
        intake_commands,
    ):
        for command in module.COMMANDS:
            main.add_command(command)


_register_commands()
