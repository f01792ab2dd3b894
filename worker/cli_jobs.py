"""Commands that act on jobs: enqueue, status, backfill, retry."""

from __future__ import annotations

import click

__all__ = ["COMMANDS"]

COMMANDS: list[click.Command] = []
