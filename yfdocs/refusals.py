"""How the command refuses: one line on stderr naming the problem, exit status 2.

Every refusal of the service is a `YfdocsError` whose decision is REFUSE (bad input, an
unknown job id, a job that cannot be retried, no installation where the settings point)
or a `SchemaNotReady`; `yfdocs.main` turns any of them into that one line, so no command
answers a refusal with a traceback, and none needs its own handler.
"""

from __future__ import annotations

from typing import NoReturn

import click

from models.errors import Decision, YfdocsError
from yfdocs.terminal_text import visible

__all__ = ["EXIT_REFUSED", "is_refusal", "refuse"]

EXIT_REFUSED = 2


def is_refusal(exc: BaseException) -> bool:
    """Whether `exc` means "the caller's request is refused, nothing was done"."""
    return isinstance(exc, YfdocsError) and exc.decision is Decision.REFUSE


def refuse(message: str) -> NoReturn:
    """One line on stderr, exit 2: the caller's input was refused."""
    click.echo(f"error: {visible(message)}", err=True)
    raise SystemExit(EXIT_REFUSED)
