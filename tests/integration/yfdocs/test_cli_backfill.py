"""`yfdocs backfill`: good rows enqueued at backfill priority, bad rows reported, rerun safe."""

from __future__ import annotations

import json
from pathlib import Path

from tests.pdf_samples import make_pdf
from tests.plugins.cli_fixtures import DEAD_BROKER, Cli

HEADER = "file,personCode,type,description,validFrom,key\n"


def write_manifest(folder: Path) -> Path:
    docs = folder / "docs"
    docs.mkdir()
    make_pdf(docs / "a.pdf", text="a")
    make_pdf(docs / "b.pdf", text="b")
    make_pdf(docs / "c.pdf", text="c")
    (docs / "fake.pdf").write_bytes(b"not a pdf at all")
    manifest = folder / "manifest.csv"
    manifest.write_text(
        HEADER
        + "docs/a.pdf,P1,diploma,Diploma A,2020-01-01,\n"
        + "docs/b.pdf,P2,certificate,,,lms-b\n"
        + "docs/fake.pdf,P3,diploma,,,\n"
        + "docs/c.pdf,../evil,diploma,,,\n"
        + "docs/missing.pdf,P4,diploma,,,\n"
        + "docs/c.pdf,P5,careerOther,,2021-02-30,\n"
        + "docs/c.pdf,P6,careerOther,Other,,\n",
        encoding="utf-8",
    )
    return manifest


def test_backfill_reports_rows_and_is_safe_to_run_twice(cli: Cli, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    first = cli.run("backfill", str(manifest), "--json")
    assert first.returncode == 2, first.stderr
    report = json.loads(first.stdout)
    assert report["created"] == 3
    assert report["already_present"] == 0
    assert report["rejected"] == 4
    reasons = {r["row"]: r["error"] for r in report["rejections"]}
    assert "not a PDF" in reasons[4]
    assert "invalid personCode '../evil'" in reasons[5]
    assert "does not exist" in reasons[6]
    assert "no such calendar date" in reasons[7]
    jobs = {job["person_code"]: job for job in report["jobs"]}
    assert set(jobs) == {"P1", "P2", "P6"}
    assert all(job["priority"] == "backfill" for job in jobs.values())
    assert all(job["source"] == "backfill" for job in jobs.values())
    assert jobs["P1"]["valid_from"] == "2020-01-01"
    assert jobs["P1"]["description"] == "Diploma A"
    assert jobs["P2"]["description"] == "Certificate: b"

    second = cli.run("backfill", str(manifest), "--json")
    again = json.loads(second.stdout)
    assert again["created"] == 0
    assert again["already_present"] == 3
    assert {job["id"] for job in again["jobs"]} == {job["id"] for job in jobs.values()}
    assert len(cli.json("status")) == 3
    assert len(cli.stored_pdfs()) == 3  # a, b and c once each; the refused fake never


def test_backfill_all_good_exits_0_with_a_readable_summary(cli: Cli, tmp_path: Path) -> None:
    make_pdf(tmp_path / "one.pdf", text="one")
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + "one.pdf,P1,diploma,,,\n", encoding="utf-8")
    result = cli.run("backfill", str(manifest), COLUMNS="200")
    assert result.returncode == 0, result.stderr
    assert "created: 1  already present: 0  rejected: 0" in result.stdout
    rerun = cli.run("backfill", str(manifest), COLUMNS="200")
    assert rerun.returncode == 0
    assert "created: 0  already present: 1  rejected: 0" in rerun.stdout


def test_backfill_table_names_the_rejected_rows(cli: Cli, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + "nothing.pdf,P1,diploma,,,\n,P2,diploma,,,\n", encoding="utf-8")
    result = cli.run("backfill", str(manifest), COLUMNS="200")
    assert result.returncode == 2
    assert "rejected rows" in result.stdout
    assert "does not exist" in result.stdout
    assert "the file column is empty" in result.stdout
    assert "rejected: 2" in result.stdout


def test_backfill_refuses_a_bad_manifest(cli: Cli, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("name,person\nx,y\n", encoding="utf-8")
    result = cli.run("backfill", str(manifest))
    assert result.returncode == 2
    assert "lacks column(s) file, personCode, type" in result.stderr
    missing = cli.run("backfill", str(tmp_path / "none.csv"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr


def test_backfill_with_the_broker_down_still_enqueues(cli: Cli, tmp_path: Path) -> None:
    for n in range(3):
        make_pdf(tmp_path / f"{n}.pdf", text=f"down {n}")
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        HEADER + "".join(f"{n}.pdf,P{n},diploma,,,\n" for n in range(3)), encoding="utf-8"
    )
    result = cli.run("backfill", str(manifest), "--json", YFDOCS_BROKER_URL=DEAD_BROKER)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["created"] == 3
    assert "unpublished" not in report, "nothing is published at enqueue: nothing to count"
    assert all(job["state"] == "queued" for job in report["jobs"])
    assert all(job["published_at"] is None for job in report["jobs"])
