"""`yfdocs enqueue` and `yfdocs status` as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from models import UploadJob
from tests.pdf_samples import make_encrypted_pdf, make_pdf
from tests.plugins.cli_fixtures import TENANT, Cli


def job_count(cli: Cli) -> int:
    with Session(cli.engine) as session:
        return session.exec(select(func.count()).select_from(UploadJob)).one()


def test_enqueue_prints_the_id_and_is_idempotent(cli: Cli, tmp_path: Path) -> None:
    pdf = tmp_path / "First aid.pdf"
    make_pdf(pdf, text="first aid")
    first = cli.run("enqueue", str(pdf), "--person", "P123", "--type", "diploma")
    assert first.returncode == 0, first.stderr
    job_id = first.stdout.strip()
    assert len(job_id) == 36
    again = cli.json("enqueue", str(pdf), "--person", "P123", "--type", "DIPLOMA")
    assert again["id"] == job_id
    assert again["created"] is False
    assert again["state"] == "queued"
    assert again["description"] == "Diploma: First aid"
    assert again["published_at"] is None  # the dispatcher publishes it
    assert job_count(cli) == 1
    assert len(cli.stored_pdfs()) == 1
    assert cli.queued_messages() == set(), "the producer sends nothing to the broker"


def test_enqueue_json_with_all_options(cli: Cli, tmp_path: Path) -> None:
    pdf = tmp_path / "review.pdf"
    make_pdf(pdf, text="review")
    job = cli.json(
        "enqueue",
        str(pdf),
        "--person",
        "E-77",
        "--type",
        "appraisalReview",
        "--description",
        "Appraisal 2024",
        "--valid-from",
        "2024-03-01",
        "--tenant",
        "999",
        "--key",
        "lms-42",
    )
    assert job["created"] is True
    assert job["tenant_id"] == "999"
    assert job["document_type"] == "appraisalReview"
    assert job["valid_from"] == "2024-03-01"
    assert job["description"] == "Appraisal 2024"
    assert job["source"] == "cli"
    assert job["priority"] == "live"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--person", "../x", "--type", "diploma"], "invalid personCode '../x'"),
        (["--person", "P1", "--type", "passport"], "unknown document type 'passport'"),
        (["--person", "P1", "--type", "diploma", "--valid-from", "2024-02-30"], "no such"),
        (["--person", "P1", "--type", "diploma", "--description", " "], "description is empty"),
        (["--person", "P1", "--type", "diploma", "--tenant", "a/b"], "invalid tenant id"),
    ],
)
def test_bad_options_exit_2_with_one_line_and_store_nothing(
    cli: Cli, tmp_path: Path, args: list[str], message: str
) -> None:
    pdf = tmp_path / "ok.pdf"
    make_pdf(pdf, text="ok")
    result = cli.run("enqueue", str(pdf), *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert result.stdout == ""
    assert cli.stored_pdfs() == []
    assert job_count(cli) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"GIF89a not a pdf", "not a PDF"),
        (make_encrypted_pdf(), "encrypted"),
        (make_pdf(text="cut")[:250], "truncated"),
        (make_pdf(pad_to=4_000_001, text="big"), "4,000,001 bytes"),
    ],
    ids=["empty", "gif", "encrypted", "truncated", "too-big"],
)
def test_bad_files_exit_2(cli: Cli, tmp_path: Path, content: bytes, message: str) -> None:
    pdf = tmp_path / "bad.pdf"
    pdf.write_bytes(content)
    result = cli.run("enqueue", str(pdf), "--person", "P1", "--type", "diploma")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert cli.stored_pdfs() == []
    assert job_count(cli) == 0


def test_missing_file_and_missing_tenant(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("enqueue", str(tmp_path / "nope.pdf"), "--person", "P1", "--type", "diploma")
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    pdf = tmp_path / "ok.pdf"
    make_pdf(pdf, text="t")
    result = cli.run(
        "enqueue", str(pdf), "--person", "P1", "--type", "diploma", YFDOCS_TENANT_ID=""
    )
    assert result.returncode == 2
    assert "no tenant id" in result.stderr


def test_key_conflict_exits_2(cli: Cli, tmp_path: Path) -> None:
    one, two = tmp_path / "one.pdf", tmp_path / "two.pdf"
    make_pdf(one, text="one")
    make_pdf(two, text="two")
    assert (
        cli.run(
            "enqueue", str(one), "--person", "P1", "--type", "diploma", "--key", "e1"
        ).returncode
        == 0
    )
    result = cli.run("enqueue", str(two), "--person", "P1", "--type", "diploma", "--key", "e1")
    assert result.returncode == 2
    assert "idempotency key 'e1' is already used" in result.stderr
    assert job_count(cli) == 1


def test_same_document_without_then_with_a_key_is_one_job(cli: Cli, tmp_path: Path) -> None:
    pdf = tmp_path / "once.pdf"
    make_pdf(pdf, text="sent twice")
    first = cli.json("enqueue", str(pdf), "--person", "P1", "--type", "diploma")
    keyed = cli.json("enqueue", str(pdf), "--person", "P1", "--type", "diploma", "--key", "k7")
    assert keyed["id"] == first["id"]
    assert keyed["created"] is False
    assert job_count(cli) == 1
    reasons = [event["reason"] for event in cli.json("status", first["id"])["events"]]
    assert reasons == ["enqueued by cli", "enqueued again by cli with key k7: same document"]


def test_status_table_json_detail_and_filters(cli: Cli, tmp_path: Path) -> None:
    ids = []
    for n in range(3):
        pdf = tmp_path / f"doc{n}.pdf"
        make_pdf(pdf, text=f"doc {n}")
        ids.append(
            cli.run(
                "enqueue", str(pdf), "--person", f"P{n}", "--type", "certificate"
            ).stdout.strip()
        )
    listed = cli.json("status")
    assert [job["id"] for job in listed] == list(reversed(ids))
    for job in listed:
        assert {
            "id",
            "state",
            "tenant_id",
            "person_code",
            "document_type",
            "ticket_id",
            "attempts",
            "error",
            "created_at",
            "updated_at",
        } <= set(job)
        assert job["tenant_id"] == TENANT
    assert len(cli.json("status", "--limit", "2")) == 2
    assert len(cli.json("status", "--state", "queued")) == 3
    assert cli.json("status", "--state", "complete") == []

    table = cli.run("status", COLUMNS="200")
    assert table.returncode == 0
    for job_id in ids:
        assert job_id[:8] in table.stdout
    assert "queued" in table.stdout

    detail = cli.json("status", ids[0][:8])
    assert detail["id"] == ids[0]
    assert [e["to_state"] for e in detail["events"]] == ["queued"]
    text = cli.run("status", ids[0], COLUMNS="200")
    assert "history" in text.stdout
    assert "enqueued by cli" in text.stdout


def test_status_refuses_unknown_ids_and_states(cli: Cli) -> None:
    unknown = cli.run("status", "ffffffff-0000")
    assert unknown.returncode == 2
    assert "no job with id 'ffffffff-0000'" in unknown.stderr
    bad_state = cli.run("status", "--state", "done")
    assert bad_state.returncode == 2
    assert "done" in bad_state.stderr
