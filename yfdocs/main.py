"""The `yfdocs` command line: one group, commands grouped by what they act on.

Settings are read here, at the entry point, and passed down; exit status 2 means the
input was refused (nothing stored), 1 that something went wrong on the way.
"""

from __future__ import annotations

import logging

import click

from config import Settings

__all__ = ["main"]


class CliContext:
    """What every command gets: the settings, read once at the entry point."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """yfdocs: deliver LMS documents into Youforce personnel files."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = CliContext(Settings())


def _register_commands() -> None:
    from yfdocs import intake_commands, job_commands, recovery_commands, service_commands

    for module in (job_commands, recovery_commands, service_commands, intake_commands):
        for command in module.COMMANDS:
            main.add_command(command)


_register_commands()
