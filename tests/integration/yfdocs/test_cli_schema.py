"""`yfdocs migrate`, and every command that needs the schema checking it first.

On PostgreSQL only `yfdocs migrate` (and a starting worker or beat) migrates: a command that
meets a new, empty database or an older schema answers one line naming `yfdocs migrate`,
exit 2, and creates nothing. Each test gets a real, new PostgreSQL database.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from models import make_engine, migrate
from models.db import alembic_config, current_revision, head_revision
from tests.pdf_samples import make_pdf
from tests.plugins.cli_fixtures import YFDOCS, EmbeddedCli
from tests.plugins.database_fixtures import (
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
)

pytestmark = pytest.mark.postgres

HEADER = "file,personCode,type,description,validFrom,key\n"


@pytest.fixture
def new_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database (no schema), dropped after the test."""
    server_url = postgres_server_url()
    url = create_postgres_database(server_url)
    yield url
    drop_postgres_database(server_url, url)


def command_args(command: str, tmp_path: Path) -> list[str]:
    pdf = tmp_path / "ok.pdf"
    make_pdf(pdf, text="valid")
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + "ok.pdf,P1,diploma,,,\n")
    return {
        "enqueue": ["enqueue", str(pdf), "--person", "P1", "--type", "diploma"],
        "status": ["status"],
        "status-fleet": ["status", "--fleet", "--json"],
        "status-job": ["status", "0123abcd"],
        "backfill": ["backfill", str(manifest)],
        "retry": ["retry", "0123abcd"],
    }[command]


COMMANDS = ["enqueue", "status", "status-fleet", "status-job", "backfill", "retry"]


def assert_names_yfdocs_migrate(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "run `yfdocs migrate`" in lines[0]
    assert "password" not in result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_on_an_empty_database_names_yfdocs_migrate(
    embedded_cli: EmbeddedCli, new_postgres: str, tmp_path: Path, command: str
) -> None:
    result = embedded_cli.run(*command_args(command, tmp_path), YFDOCS_DATABASE_URL=new_postgres)
    assert_names_yfdocs_migrate(result, "the database has no yfdocs schema yet")
    assert not embedded_cli.data_dir.exists()
    engine = make_engine(new_postgres)
    try:
        assert current_revision(engine) is None  # nothing migrated it behind our back
    finally:
        engine.dispose()


def test_a_command_on_an_older_schema_names_both_revisions(
    embedded_cli: EmbeddedCli, new_postgres: str, tmp_path: Path
) -> None:
    head = head_revision()
    older = ScriptDirectory.from_config(alembic_config(None)).get_revision(head).down_revision
    assert isinstance(older, str)
    engine = make_engine(new_postgres)
    try:
        migrate(engine, older)
    finally:
        engine.dispose()
    for command in ("enqueue", "status"):
        result = embedded_cli.run(
            *command_args(command, tmp_path), YFDOCS_DATABASE_URL=new_postgres
        )
        assert_names_yfdocs_migrate(
            result, f"the database schema is at revision {older}, this yfdocs needs {head}"
        )


def test_yfdocs_migrate_reaches_head_again_and_again_and_then_commands_work(
    embedded_cli: EmbeddedCli, new_postgres: str, tmp_path: Path
) -> None:
    head = head_revision()
    for _ in range(2):
        result = embedded_cli.run("migrate", YFDOCS_DATABASE_URL=new_postgres)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"schema at revision {head}\n"
    assert not embedded_cli.data_dir.exists()  # a fleet's database needs no data dir
    enqueued = embedded_cli.run(
        *command_args("enqueue", tmp_path), YFDOCS_DATABASE_URL=new_postgres
    )
    assert enqueued.returncode == 0, enqueued.stderr
    status = embedded_cli.run("status", "--json", YFDOCS_DATABASE_URL=new_postgres)
    assert status.returncode == 0, status.stderr
    assert enqueued.stdout.strip() in status.stdout


def test_two_migrates_at_once_both_succeed(embedded_cli: EmbeddedCli, new_postgres: str) -> None:
    processes = [
        subprocess.Popen(
            [YFDOCS, "migrate"],
            cwd=embedded_cli.cwd,
            env=embedded_cli.env(YFDOCS_DATABASE_URL=new_postgres),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    head = head_revision()
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert out == f"schema at revision {head}\n"
    engine = make_engine(new_postgres)
    try:
        assert current_revision(engine) == head
    finally:
        engine.dispose()


@pytest.mark.parametrize("run", [1, 2], ids=["first", "again"])
def test_yfdocs_migrate_on_the_embedded_database(embedded_cli: EmbeddedCli, run: int) -> None:
    for _ in range(run):
        result = embedded_cli.run("migrate")
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"schema at revision {head_revision()}\n"
    assert (embedded_cli.data_dir / "yfdocs.sqlite3").is_file()
