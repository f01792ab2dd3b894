"""Flower's credentials: configured, or generated once and kept in the data dir.

Flower never serves without authentication. With `YFDOCS_FLOWER_PASSWORD` set, that is
the password; without it, `yfdocs flower` generates one on first start and keeps it in
`<data dir>/flower-password`, created readable by its owner only (0600), and says where
it is, never what it is. A password file that others may read is refused rather than
used: whoever could read it might already have it.

The compose health check and the demo read the same credentials through
`flower_credentials`, so a generated password serves them as well.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from config import Settings

__all__ = [
    "PASSWORD_FILE_NAME",
    "FlowerAccessError",
    "FlowerCredentials",
    "flower_credentials",
    "healthcheck",
]

PASSWORD_FILE_NAME = "flower-password"  # noqa: S105 (a file name)


class FlowerAccessError(Exception):
    """Flower's credentials cannot be used as configured (the message says why)."""


@dataclass(frozen=True)
class FlowerCredentials:
    """Who may use Flower; `generated_in` is the password's file when none was configured."""

    user: str
    password: str = field(repr=False)
    generated_in: Path | None = None

    @property
    def basic_auth_option(self) -> str:
        """Flower's `--basic-auth` value (given through the environment, never argv)."""
        return f"{self.user}:{self.password}"

    @property
    def authorization_header(self) -> str:
        token = base64.b64encode(self.basic_auth_option.encode()).decode()
        return f"Basic {token}"


def flower_credentials(settings: Settings) -> FlowerCredentials:
    """The configured credentials, or the generated password (made on first use)."""
    user = settings.flower_user
    if not user or ":" in user or "," in user:
        raise FlowerAccessError("YFDOCS_FLOWER_USER must be set and hold no ':' or ','")
    configured = settings.flower_password.get_secret_value() if settings.flower_password else ""
    if configured:
        if "," in configured:
            # Flower splits its basic-auth setting at commas.
            raise FlowerAccessError("YFDOCS_FLOWER_PASSWORD must not contain ','")
        return FlowerCredentials(user, configured)
    path = settings.data_dir / PASSWORD_FILE_NAME
    return FlowerCredentials(user, _generated_password(path), path)


def _generated_password(path: Path) -> str:
    """The password in `path`, written there first (mode 0600) if the file does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_private(path)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password + "\n")
    return password


def _read_private(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise FlowerAccessError(
            f"{path} may be read by others (mode {mode:o}): delete it to have a new "
            "password made, or set YFDOCS_FLOWER_PASSWORD"
        )
    password = path.read_text().strip()
    if not password:
        raise FlowerAccessError(f"{path} is empty: delete it to have a new password made")
    return password


def healthcheck(url: str, settings: Settings | None = None, timeout: float = 5.0) -> int:
    """0 if Flower answers `url` with 200 to its credentials, else 1 (for health checks)."""
    credentials = flower_credentials(settings or Settings())
    request = urllib.request.Request(  # noqa: S310 (a URL the caller gives, http only)
        url, headers={"Authorization": credentials.authorization_header}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return 0 if answer.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"flower health check: {exc}", file=sys.stderr)
        return 1
