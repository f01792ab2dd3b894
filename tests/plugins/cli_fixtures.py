"""Run the real `yfdocs` command against a data dir in tmp and each kind of database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from config import Settings
from worker.celery_app import filesystem_queue_folder, job_ids_waiting_in_filesystem_queue

REPO = Path(__file__).resolve().parents[2]
YFDOCS = str(Path(sys.executable).with_name("yfdocs"))
TENANT = "4028868"
DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def clean_environment(**extra: str) -> dict[str, str]:
    """The test's environment minus any YFDOCS_ setting of the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YFDOCS_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def run_yfdocs(
    args: tuple[str, ...] | list[str], *, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess, its output as text (undecodable bytes escaped)."""
    return subprocess.run(
        [YFDOCS, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=120,
        check=False,
    )


@dataclass
class Cli:
    """`yfdocs` with this test's data dir and database."""

    data_dir: Path
    database_url: str
    engine: Engine
    cwd: Path

    def env(self, **extra: str) -> dict[str, str]:
        settings = {
            "YFDOCS_DATA_DIR": str(self.data_dir),
            "YFDOCS_DATABASE_URL": self.database_url,
            "YFDOCS_TENANT_ID": TENANT,
        }
        return clean_environment(**{**settings, **extra})

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return run_yfdocs(args, cwd=self.cwd, env=self.env(**extra))

    def json(self, *args: str, **extra: str) -> Any:
        result = self.run(*args, "--json", **extra)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "documents"

    def stored_pdfs(self) -> list[Path]:
        return sorted(self.store_dir.rglob("*.pdf")) if self.store_dir.exists() else []

    def settings(self) -> Settings:
        return Settings(
            data_dir=self.data_dir,
            database_url=self.database_url,  # type: ignore[arg-type]
            tenant_id=TENANT,
            _env_file=None,  # type: ignore[call-arg]
        )

    def queued_messages(self) -> set[str]:
        """The job ids whose message lies in the filesystem broker's task queue."""
        if not filesystem_queue_folder(self.settings()).exists():
            return set()
        return job_ids_waiting_in_filesystem_queue(self.settings())


@dataclass
class EmbeddedCli:
    """`yfdocs` on its embedded defaults: SQLite and the broker in a data dir that does not
    exist yet, so that a test can see whether a command created anything at all."""

    data_dir: Path
    cwd: Path

    def env(self, **extra: str) -> dict[str, str]:
        return clean_environment(
            **{"YFDOCS_DATA_DIR": str(self.data_dir), "YFDOCS_TENANT_ID": TENANT, **extra}
        )

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return run_yfdocs(args, cwd=self.cwd, env=self.env(**extra))


@pytest.fixture
def embedded_cli(tmp_path: Path) -> EmbeddedCli:
    work = tmp_path / "work"
    work.mkdir()
    return EmbeddedCli(data_dir=tmp_path / "data", cwd=work)


@pytest.fixture
def cli(tmp_path: Path, database_url: str, db_engine: Engine) -> Cli:
    work = tmp_path / "work"
    work.mkdir()
    return Cli(data_dir=tmp_path / "data", database_url=database_url, engine=db_engine, cwd=work)


@pytest.fixture
def python_script() -> Callable[..., subprocess.Popen[str]]:
    """Start `python -c CODE ARGS...` with the repository importable."""

    def start(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env=env or clean_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return start
