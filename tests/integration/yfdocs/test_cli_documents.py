"""`yfdocs documents move` as an operator runs it: from the default store of each database
(the data dir on SQLite, the database on PostgreSQL) to S3, twice, with a bad value, and
where there is no installation (refused, nothing created, as every command that reads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import document_store as choice
from tests.pdf_samples import make_pdf
from tests.plugins.cli_fixtures import Cli, EmbeddedCli
from tests.plugins.s3_fixtures import S3Bucket

pytestmark = pytest.mark.s3


def _enqueue(cli: Cli, tmp_path: Path, name: str, **env: str) -> str:
    pdf = tmp_path / f"{name}.pdf"
    make_pdf(pdf, text=name)
    result = cli.run("enqueue", str(pdf), "--person", "P123", "--type", "diploma", **env)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_move_to_s3_switches_the_fleet_and_a_second_run_only_counts(
    cli: Cli, tmp_path: Path, s3_bucket: S3Bucket
) -> None:
    aws = s3_bucket.server.environment
    _enqueue(cli, tmp_path, "first")
    _enqueue(cli, tmp_path, "second")
    source = "postgres" if cli.database_url.startswith("postgresql") else "filesystem"
    target = s3_bucket.location_text

    moved = cli.run("documents", "move", "--to", target, **aws)

    assert moved.returncode == 0, moved.stderr
    assert f"moved the documents from {source} to {target}: 2 copied" in moved.stdout
    assert f"set YFDOCS_DOCUMENT_STORE={target} in every process's configuration" in moved.stdout
    assert "yfdocs-test-secret" not in moved.stdout + moved.stderr
    assert s3_bucket.object_count() == 2
    state = choice.read_store_state(cli.engine)
    assert state is not None
    assert (state.active, state.other) == (target, None)

    warned = _enqueue(cli, tmp_path, "third", **aws)  # a process still configured as before
    assert f"but the database names {target}" in warned
    assert s3_bucket.object_count() == 3

    again = cli.run("documents", "move", "--to", target, YFDOCS_DOCUMENT_STORE=target, **aws)
    assert again.returncode == 0, again.stderr
    assert f"in {target} already: 3 that jobs need are there, 0 missing" in again.stdout
    assert "set YFDOCS_DOCUMENT_STORE" not in again.stdout


@pytest.mark.parametrize(
    ("value", "expected"),
    [("nfs://x", "is not a document store"), ("s3://UPPER", "not an S3 bucket name")],
)
def test_a_store_that_is_no_store_is_refused_with_one_line(
    cli: Cli, value: str, expected: str
) -> None:
    result = cli.run("documents", "move", "--to", value)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: --to: ")
    assert expected in result.stderr


def test_a_move_on_a_mistyped_data_dir_names_it_and_creates_nothing(
    embedded_cli: EmbeddedCli, s3_bucket: S3Bucket
) -> None:
    result = embedded_cli.run(
        "documents", "move", "--to", s3_bucket.location_text, **s3_bucket.server.environment
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: found no yfdocs installation in {embedded_cli.data_dir} (no database there): "
        "check YFDOCS_DATA_DIR"
    ]
    assert not embedded_cli.data_dir.exists()
    assert s3_bucket.object_count() == 0
