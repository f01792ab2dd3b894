"""`yfdocs backfill` in process: an error nobody foresaw in one row stops that row only."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError

import intake.producer as producer
from tests.pdf_samples import make_pdf
from tests.plugins.cli_fixtures import TENANT
from yfdocs.main import main

HEADER = "file,personCode,type,description,validFrom,key\n"


def run_backfill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: Exception) -> Any:
    """Backfill three good rows while checking the second one's PDF raises `failing`."""
    second = make_pdf(tmp_path / "b.pdf", text="b")
    make_pdf(tmp_path / "a.pdf", text="a")
    make_pdf(tmp_path / "c.pdf", text="c")
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + "a.pdf,P1,diploma,,,\nb.pdf,P2,diploma,,,\nc.pdf,P3,diploma,,,\n")
    real = producer.check_pdf

    def check_pdf(data: bytes, *args: Any, **kwargs: Any) -> Any:
        if data == second:
            raise failing
        return real(data, *args, **kwargs)

    monkeypatch.setattr(producer, "check_pdf", check_pdf)
    for name in list(os.environ):
        if name.startswith("YFDOCS_"):
            monkeypatch.delenv(name)
    env = {"YFDOCS_DATA_DIR": str(tmp_path / "data"), "YFDOCS_TENANT_ID": TENANT}
    return CliRunner().invoke(main, ["backfill", str(manifest), "--json"], env=env)


def test_an_unexpected_error_in_a_row_is_reported_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_backfill(tmp_path, monkeypatch, RuntimeError("a bug in the producer"))
    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    assert report["created"] == 2
    assert {job["person_code"] for job in report["jobs"]} == {"P1", "P3"}
    assert report["rejections"] == [
        {
            "row": 3,
            "file": "b.pdf",
            "field": None,
            "error": "unexpected error: RuntimeError('a bug in the producer')",
        }
    ]


def test_a_database_outage_stops_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outage = OperationalError("INSERT ...", {}, Exception("server closed the connection"))
    result = run_backfill(tmp_path, monkeypatch, outage)
    assert result.exit_code == 1
    assert result.exception is outage
