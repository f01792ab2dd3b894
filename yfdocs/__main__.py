"""`python -m yfdocs ...` is `yfdocs ...` (used to start child processes from any venv)."""

from __future__ import annotations

from yfdocs.main import main

main()
