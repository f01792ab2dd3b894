"""`python -m worker ...` is `yfdocs ...` (used to start child processes from any venv)."""

from __future__ import annotations

from worker.cli import main

main()
