"""Test suite root: the shared fixtures live in `tests/plugins/`, one module per boundary."""

from __future__ import annotations

pytest_plugins: list[str] = [
    "tests.plugins.cli_fixtures",
    "tests.plugins.database_fixtures",
    "tests.plugins.event_loop_guard",
    "tests.plugins.https_fixtures",
    "tests.plugins.intake_fixtures",
    "tests.plugins.producer_fixtures",
    "tests.plugins.s3_fixtures",
    "tests.plugins.sandbox_fixtures",
    "tests.plugins.worker_fixtures",
]
