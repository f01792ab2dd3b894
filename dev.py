#!/usr/bin/env python3
"""Bootstrap and run yfdocs from a fresh checkout with nothing but Python 3.11+.

    python3 dev.py demo          # any `yfdocs` command: demo, sandbox, enqueue, status, ...
    python3 dev.py test [ARGS]   # ruff, mypy, the import contract and the whole pytest suite
    python3 dev.py lint          # ruff, mypy and the import contract only

The first run creates `.venv` from the hash-pinned lock file; later runs reuse it and
rebuild it only when the lock file or pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements-dev.lock"
STAMP = VENV / ".yfdocs-lock-stamp"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for path in (LOCK, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _run(*args: str | Path) -> None:
    completed = subprocess.run([str(a) for a in args], cwd=ROOT, check=False)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def ensure_environment() -> None:
    """Create or refresh `.venv` so that it matches the lock file exactly."""
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py runs under whatever python3 is)
        sys.exit("yfdocs needs Python 3.11 or newer")
    wanted = _lock_digest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    print("dev.py: preparing .venv from requirements-dev.lock ...", file=sys.stderr, flush=True)
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    python = BIN / "python"
    quiet = "--quiet"
    _run(python, "-m", "pip", "install", quiet, "--upgrade", "pip")
    _run(python, "-m", "pip", "install", quiet, "--require-hashes", "-r", LOCK)
    _run(python, "-m", "pip", "install", quiet, "--no-deps", "--editable", ROOT)
    STAMP.write_text(wanted + "\n")


def lint() -> None:
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "ruff", "format", "--check", ".")
    _run(BIN / "mypy")
    _run(BIN / "lint-imports", "--no-cache")


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit(__doc__)
    ensure_environment()
    command, rest = argv[0], argv[1:]
    if command == "lint":
        lint()
    elif command == "test":
        lint()
        _run(BIN / "python", "-m", "pytest", *rest)
    else:
        os.execv(BIN / "yfdocs", [str(BIN / "yfdocs"), command, *rest])


if __name__ == "__main__":
    main(sys.argv[1:])
