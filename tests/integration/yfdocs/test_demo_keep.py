"""`yfdocs demo --keep`: Flower is up before the demo enqueues, so its jobs are there to see.

The real command in a process of its own (sandbox, worker with beat, Flower), read as a
user reads it: the outcome table, then Flower's address and where its password is. The
test then asks Flower's API what an administrator would find, and stops the demo with
Ctrl-C (SIGINT), as its last line says.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from messaging import HOUSEKEEPING_TASKS, UPLOAD_TASK
from tests.plugins.cli_fixtures import clean_environment
from tests.plugins.flower import free_port
from yfdocs.demo import DEMO_PERSON, DEMO_REJECTED_PERSON

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

FLOWER_LINE = re.compile(r"Flower: (http://127\.0\.0\.1:\d+)/ \(user (\w+), password in (\S+)\)\.")


class Output:
    """The demo's stdout, collected line by line in the background."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._stream = process.stdout
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := pattern.search(line):
                    return found
            time.sleep(0.2)
        raise AssertionError(f"no line like {pattern.pattern!r}:\n" + "\n".join(self.lines))


def test_demo_keep_shows_its_own_jobs_in_flower(tmp_path: Path) -> None:
    port = free_port()
    env = clean_environment(
        YFDOCS_DATA_DIR=str(tmp_path / "data"), YFDOCS_FLOWER_PORT=str(port), COLUMNS="400"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "yfdocs", "demo", "--keep", "--timeout", "150"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = Output(process)
    try:
        found = output.wait_for(FLOWER_LINE, timeout=200)
        url, user, password_file = found.groups()
        assert any("every job ended as expected" in line for line in output.lines)
        password = Path(password_file).read_text().strip()
        assert password not in "\n".join(output.lines), "the password itself is not printed"

        def tasks() -> list[dict[str, Any]]:
            answer = requests.get(f"{url}/api/tasks", auth=(user, password), timeout=10)
            answer.raise_for_status()
            return list(answer.json().values())

        def ended(task: dict[str, Any]) -> bool:
            return task["state"] == "FAILURE" or "'state': 'complete'" in str(task["result"])

        # Flower gets its events a moment after the database records the outcomes.
        deadline = time.monotonic() + 30
        while len([task for task in tasks() if ended(task)]) < 8 and time.monotonic() < deadline:
            time.sleep(0.5)
        seen = tasks()
        uploads = [task for task in seen if task["name"] == UPLOAD_TASK]
        assert len(uploads) == 8, "all eight enqueued jobs reached Flower, from the first"
        assert not [task for task in seen if task["name"] in HOUSEKEEPING_TASKS]
        delivered = [task for task in seen if task["state"] == "SUCCESS" and ended(task)]
        assert len(delivered) == 7
        assert all(DEMO_PERSON in task["result"] for task in delivered)
        failed = [task for task in seen if task["state"] == "FAILURE"]
        assert len(failed) == 1
        assert DEMO_REJECTED_PERSON in failed[0]["result"]
        assert "Youforce rejected the document" in failed[0]["exception"]
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            status = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            raise
        finally:
            assert process.stdout is not None
            process.stdout.close()
    assert status == 0, "\n".join(output.lines)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthcheck", timeout=2)
