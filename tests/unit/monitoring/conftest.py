"""The worker's unit harness, for metrics read from what the real steps recorded."""

from __future__ import annotations

from tests.unit.worker.conftest import _no_yfdocs_environment, make_harness  # noqa: F401
