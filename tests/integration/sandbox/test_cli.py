"""`python -m sandbox` runs in the foreground, prints one line, and stops on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from typing import cast

from sandbox import SandboxServer
from tests.integration.sandbox.wire import get_token


def test_module_entry_serves_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", "--time-scale", "10", "--no-limits"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        probe = cast(SandboxServer, _Remote(match.group(0)))
        assert get_token(probe)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert out == ""  # nothing after the startup line


class _Remote:
    """Just enough of SandboxServer's face for the wire helpers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.token_url = url + "/connect/token"
