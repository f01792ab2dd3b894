"""A real worker (main process, pool children, embedded beat) honours YFDOCS_LOG_FORMAT.

With `json` every line the worker logs is one JSON object, Celery's own lines included,
and each change of a job's state is one line with the job id, tenant, state, attempt and
correlationId as fields. The log goes to stderr; stdout carries only what Celery writes
there from its signal handlers, outside logging ("worker: Warm shutdown (MainProcess)").
The test's worker writes both into one file, so those notices are told apart by shape.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.plugins.worker_fixtures import ServiceUnderTest

pytestmark = [pytest.mark.timeout(120)]


CELERY_STDOUT_NOTICE = re.compile(r"^worker: \w+ shutdown \(MainProcess\)$")


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or CELERY_STDOUT_NOTICE.match(line):
            continue
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from None
    return lines


def test_json_lines_from_every_worker_process(service: ServiceUnderTest) -> None:
    service.configure(YFDOCS_LOG_FORMAT="json")
    worker = service.start_worker()
    job_id = service.enqueue()
    assert service.wait_for_end([job_id])[job_id].state == "complete"
    worker.stop()

    lines = json_lines(worker.log_path.read_text())

    processes = {line["process"] for line in lines}
    assert "MainProcess" in processes
    assert any(name.startswith("ForkPoolWorker") for name in processes), processes
    assert any(line["logger"].startswith("celery") for line in lines), "Celery's own lines"
    changes = [line for line in lines if line["logger"] == "yfdocs.jobs"]
    moves = [(line["from_state"], line["state"]) for line in changes]
    assert moves == [("queued", "uploading"), ("uploading", "polling"), ("polling", "complete")]
    for line in changes:
        assert line["job_id"] == job_id
        assert line["tenant"] == service.settings.tenant_id
        assert line["attempt"] == 1
        assert line["time"].endswith("+00:00")
    assert all(line["level"] in {"DEBUG", "INFO", "WARNING", "ERROR"} for line in lines)
