"""Commands that run a long-lived process: sandbox, worker, beat, flower, demo."""

from __future__ import annotations

import sys

import click

__all__ = ["COMMANDS"]


@click.command("sandbox")
@click.option("--port", type=int, default=8765, show_default=True, help="Port on 127.0.0.1.")
@click.option("--time-scale", type=float, default=1.0, show_default=True)
def sandbox_command(port: int, time_scale: float) -> None:
    """Run the Youforce API simulator on loopback (client sandbox-client / sandbox-secret)."""
    from sandbox import serve

    sys.exit(serve(["--port", str(port), "--time-scale", str(time_scale)]))


COMMANDS: list[click.Command] = [sandbox_command]
