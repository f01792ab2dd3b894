"""Hostile input at the command line: one line naming the problem, exit 2, nothing created.

The command runs on its embedded defaults with a data dir that does not exist yet: after a
refusal it must still not exist (no database, no broker folders, no stored PDF).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.pdf_samples import (
    make_active_pdf,
    make_encrypted_pdf,
    make_huge_xref_pdf,
    make_object_stream_bomb,
    make_pdf,
)
from tests.plugins.cli_fixtures import EmbeddedCli
from tests.unit.intake.test_validation import HOSTILE_PATHS


def assert_refused_in_one_line(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert "\x1b" not in result.stderr
    assert result.stdout == ""


def _write(data: bytes) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        (folder / "input.pdf").write_bytes(data)
        return str(folder / "input.pdf")

    return make


def _directory(folder: Path) -> str:
    (folder / "folder.pdf").mkdir()
    return str(folder / "folder.pdf")


def _control_characters_in_the_name(folder: Path) -> str:
    return str(folder / "gone\x1b[2J\nforged line.pdf")


HOSTILE_FILES: dict[str, tuple[Callable[[Path], str], str]] = {
    # the path corpus of the validation tests, but a NUL, which no argv can carry
    **{case: made for case, made in HOSTILE_PATHS.items() if case != "nul-byte"},
    "huge-xref": (_write(make_huge_xref_pdf()), "safety limit"),
    "object-stream-bomb": (_write(make_object_stream_bomb()), "safety limit"),
    "directory": (_directory, "is not a regular file: it is a directory"),
    "control-characters": (_control_characters_in_the_name, "gone\\x1b[2J\\x0aforged line.pdf"),
    "javascript": (_write(make_active_pdf("open-action-javascript")), "(JavaScript)"),
    "needs-a-password": (_write(make_encrypted_pdf()), "without a password"),
    "truncated": (_write(make_pdf(text="cut")[:300]), "truncated"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_FILES))
def test_a_hostile_file_is_refused_in_one_line_and_creates_nothing(
    embedded_cli: EmbeddedCli, tmp_path: Path, case: str
) -> None:
    make, message = HOSTILE_FILES[case]
    folder = tmp_path / "input"
    folder.mkdir()
    result = embedded_cli.run("enqueue", make(folder), "--person", "P1", "--type", "diploma")
    assert_refused_in_one_line(result, message)
    assert not embedded_cli.data_dir.exists()


FULL_WIDTH_DATE = "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in "2024-01-01")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--valid-from", FULL_WIDTH_DATE], "in ASCII digits, as YYYY-MM-DD"),
        (["--key", "a\x1bb"], "control characters"),
        (["--tenant", "12/34"], "invalid tenant id"),
    ],
    ids=["full-width-date", "key-with-escape", "bad-tenant"],
)
def test_a_refused_option_creates_nothing(
    embedded_cli: EmbeddedCli, tmp_path: Path, options: list[str], message: str
) -> None:
    pdf = tmp_path / "ok.pdf"
    make_pdf(pdf, text="fine")
    result = embedded_cli.run("enqueue", str(pdf), "--person", "P1", "--type", "diploma", *options)
    assert_refused_in_one_line(result, message)
    assert not embedded_cli.data_dir.exists()


def test_an_accepted_document_creates_the_installation(
    embedded_cli: EmbeddedCli, tmp_path: Path
) -> None:
    """The other side of the rule: the data dir appears with the first accepted input."""
    pdf = tmp_path / "ok.pdf"
    make_pdf(pdf, text="accepted")
    result = embedded_cli.run("enqueue", str(pdf), "--person", "P1", "--type", "diploma")
    assert result.returncode == 0, result.stderr
    assert (embedded_cli.data_dir / "yfdocs.sqlite3").is_file()
    assert any((embedded_cli.data_dir / "documents").rglob("*.pdf")), "the PDF is stored"
    # The producer needs no broker (the dispatcher publishes): it creates no broker folder.
    assert not (embedded_cli.data_dir / "broker").exists()


@pytest.mark.parametrize(
    "args",
    [["status"], ["status", "--fleet"], ["status", "--json"], ["status", "0123abcd"]],
    ids=["status", "fleet", "json", "one-job"],
)
def test_status_on_a_mistyped_data_dir_names_it_and_creates_nothing(
    embedded_cli: EmbeddedCli, args: list[str]
) -> None:
    result = embedded_cli.run(*args)
    assert_refused_in_one_line(
        result, f"found no yfdocs installation in {embedded_cli.data_dir} (no database there)"
    )
    assert "YFDOCS_DATA_DIR" in result.stderr
    assert not embedded_cli.data_dir.exists()


def test_retry_on_a_mistyped_data_dir_creates_nothing(embedded_cli: EmbeddedCli) -> None:
    result = embedded_cli.run("retry", "0123abcd")
    assert_refused_in_one_line(result, "found no yfdocs installation")
    assert not embedded_cli.data_dir.exists()


def test_status_on_a_missing_sqlite_url_names_the_file(
    embedded_cli: EmbeddedCli, tmp_path: Path
) -> None:
    missing = tmp_path / "elsewhere" / "yfdocs.sqlite3"
    result = embedded_cli.run("status", YFDOCS_DATABASE_URL=f"sqlite:///{missing}")
    assert_refused_in_one_line(result, f"no yfdocs database at {missing}")
    assert not missing.parent.exists()


def test_an_invalid_setting_is_named_in_one_line(embedded_cli: EmbeddedCli) -> None:
    result = embedded_cli.run("status", YFDOCS_PDF_ACTIVE_CONTENT="maybe")
    assert_refused_in_one_line(result, "invalid settings: YFDOCS_PDF_ACTIVE_CONTENT")
    assert "maybe" not in result.stderr  # a value is never echoed: it could be a secret


HEADER = "file,personCode,type,description,validFrom,key\n"


def test_a_backfill_of_only_refused_rows_reports_them_and_creates_nothing(
    embedded_cli: EmbeddedCli, tmp_path: Path
) -> None:
    (tmp_path / "fake.pdf").write_bytes(b"not a pdf")
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + "fake.pdf,P1,diploma,,,\nmissing.pdf,P2,diploma,,,\n")
    result = embedded_cli.run("backfill", str(manifest), "--json")
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    assert report["rejected"] == 2
    assert not embedded_cli.data_dir.exists()


def test_one_bad_row_never_stops_a_backfill(embedded_cli: EmbeddedCli, tmp_path: Path) -> None:
    """Rows that used to raise a traceback halfway are reported; the rows after them run."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("a", "b", "c"):
        make_pdf(docs / f"{name}.pdf", text=name)
    (docs / "bomb.pdf").write_bytes(make_huge_xref_pdf())
    os.mkfifo(docs / "pipe.pdf")
    (docs / "loop.pdf").symlink_to(docs / "loop.pdf")
    rows = [
        "docs/a.pdf,P1,diploma,,,",
        f"docs/{'n' * 300}.pdf,P2,diploma,,,",
        "docs/loop.pdf,P3,diploma,,,",
        "docs/b.pdf,P4,diploma,,,",
        "docs/a.pdf/,P5,diploma,,,",
        "docs/bomb.pdf,P6,diploma,,,",
        "docs/pipe.pdf,P7,diploma,,,",
        f"docs/c.pdf,P8,diploma,,{FULL_WIDTH_DATE},",
        "docs/c.pdf,P9,diploma,,,",
    ]
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    result = embedded_cli.run("backfill", str(manifest), "--json")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert {job["person_code"] for job in report["jobs"]} == {"P1", "P4", "P9"}
    reasons = {r["row"]: r["error"] for r in report["rejections"]}
    assert sorted(reasons) == [3, 4, 6, 7, 8, 9]
    assert "the name is too long" in reasons[3]
    assert "symlink loop" in reasons[4]
    assert "names a directory" in reasons[6]
    assert "safety limit" in reasons[7]
    assert "not a regular file" in reasons[8]
    assert "ASCII digits" in reasons[9]


@pytest.mark.parametrize(
    ("make", "message"),
    [(_directory, "is a directory, not a file"), (HOSTILE_PATHS["name-too-long"][0], "too long")],
    ids=["directory", "name-too-long"],
)
def test_an_unreadable_manifest_is_refused_in_one_line(
    embedded_cli: EmbeddedCli, tmp_path: Path, make: Callable[[Path], str], message: str
) -> None:
    result = embedded_cli.run("backfill", make(tmp_path))
    assert_refused_in_one_line(result, message)
    assert not embedded_cli.data_dir.exists()
