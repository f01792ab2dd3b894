"""The fleet harness: member processes on one database, and the sandbox's own record."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.engine import Engine

from sandbox import SandboxServer

REPO = Path(__file__).resolve().parents[3]
GOVERNOR_TABLES = ("api_calls", "governor_slots", "governor_state", "token_cache")


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    """The module's migrated database with the ledger, governor and token tables empty."""
    with migrated_engine.begin() as connection:
        for table in GOVERNOR_TABLES:
            connection.execute(text(f"DELETE FROM {table}"))
    return migrated_engine


@dataclass
class Fleet:
    """Starts `fleet_member` processes against one database and one sandbox."""

    database_url: str
    sandbox: SandboxServer
    workdir: Path

    def start(self, mode: str, **options: Any) -> subprocess.Popen[str]:
        command = [
            sys.executable,
            "-m",
            "tests.integration.scheduling.fleet_member",
            mode,
            "--database-url",
            self.database_url,
            "--api-url",
            self.sandbox.url,
            "--token-url",
            self.sandbox.token_url,
            "--workdir",
            str(self.workdir),
        ]
        for name, value in options.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        return subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    @staticmethod
    def summary(process: subprocess.Popen[str], timeout: float = 25) -> dict[str, Any]:
        out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, err
        return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.fixture
def workdir(tmp_path: Path, engine: Engine) -> Path:
    """A folder for the members' PDFs; asking for it empties the database first."""
    return tmp_path


def sandbox_requests(server: SandboxServer) -> list[dict[str, Any]]:
    answer = requests.get(f"{server.url}/_sandbox/requests", timeout=5)
    answer.raise_for_status()
    return list(answer.json()["requests"])


def sandbox_stats(server: SandboxServer) -> dict[str, Any]:
    answer = requests.get(f"{server.url}/_sandbox/stats", timeout=5)
    answer.raise_for_status()
    return dict(answer.json())


def wall(stamp: str) -> float:
    """A request log timestamp (UTC, milliseconds, Z) as epoch seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def peak_in_flight(entries: list[dict[str, Any]]) -> int:
    """Most requests between arrival and completion at once; an end before a start at a tie."""
    events = [(wall(e["arrived_at"]), 1) for e in entries]
    events += [(wall(e["completed_at"]), -1) for e in entries]
    events.sort(key=lambda event: (event[0], event[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def arrival_gaps(entries: list[dict[str, Any]]) -> list[float]:
    arrivals = sorted(wall(e["arrived_at"]) for e in entries)
    return [later - earlier for earlier, later in itertools.pairwise(arrivals)]
