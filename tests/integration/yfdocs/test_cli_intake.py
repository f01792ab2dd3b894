"""`yfdocs intake` and `yfdocs intake keys` as an operator runs them, on SQLite and
PostgreSQL: the key printed once and stored as a digest, list and revoke, the server's
jobs sent by the real dispatcher (the intake publishes nothing), readiness with the broker
up and down, and no secret in any log."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import requests
from sqlmodel import Session, select

from models.tables import IntakeKey
from tests.pdf_samples import make_pdf
from tests.plugins.cli_fixtures import DEAD_BROKER, TENANT, Cli
from tests.plugins.intake_fixtures import IntakeProcess


def add_key(cli: Cli, *args: str) -> tuple[str, list[str]]:
    result = cli.run("intake", "keys", "add", *args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    return lines[-1], lines[:-1]


def post_document(url: str, key: str, text: str) -> requests.Response:
    return requests.post(
        f"{url}/v1/documents",
        headers={"Authorization": f"Bearer {key}"},
        files={"file": ("diploma.pdf", make_pdf(text=text), "application/pdf")},
        data={"document_type": "diploma", "person_code": "191166"},
        timeout=30,
    )


def test_keys_are_shown_once_stored_as_digests_listed_and_revoked(cli: Cli) -> None:
    key, above = add_key(
        cli, "--name", "moodle", "--tenant", TENANT, "--tenant", "4028869",
        "--webhook-secret", "--static-secret", "--fetch-host", "lms.example.nl",
    )  # fmt: skip
    assert key.startswith("yfk_")
    webhook_secret = next(line.split(": ", 1)[1] for line in above if "webhook secret" in line)
    static_secret = next(line.split(": ", 1)[1] for line in above if "static secret" in line)
    assert webhook_secret.startswith("whsec_")
    with Session(cli.engine) as session:
        (row,) = session.exec(select(IntakeKey)).all()
    assert key not in json.dumps(row.model_dump(), default=str)
    assert static_secret not in json.dumps(row.model_dump(), default=str)

    listed = cli.run("intake", "keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert entry["tenants"] == [TENANT, "4028869"]
    assert (entry["webhook_secret"], entry["static_secret"]) == (True, True)
    table = cli.run("intake", "keys", "list")
    for secret in (key, webhook_secret, static_secret):
        assert secret not in listed.stdout + table.stdout

    again = cli.run("intake", "keys", "add", "--name", "moodle", "--tenant", TENANT)
    assert again.returncode == 2
    assert "already exists" in again.stderr
    bad = cli.run("intake", "keys", "add", "--name", "x", "--tenant", "a/b")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert cli.run("intake", "keys", "revoke", "moodle").returncode == 0
    assert cli.run("intake", "keys", "revoke", "moodle").returncode == 2
    assert json.loads(cli.run("intake", "keys", "list", "--json").stdout) == []


def test_the_intake_commits_jobs_the_dispatcher_sends_and_honours_revocation(
    cli: Cli, intake_process: Callable[..., IntakeProcess]
) -> None:
    key, _ = add_key(cli, "--name", "lms", "--tenant", TENANT)
    intake = intake_process()
    assert requests.get(f"{intake.url}/readyz", timeout=10).json() == {
        "database": "ok",
        "broker": "ok",
    }
    answer = post_document(intake.url, key, "for the dispatcher")
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["published_at"] is None
    assert cli.queued_messages() == set()  # the intake sent nothing to the broker
    dispatched = cli.run("dispatcher", "--once")
    assert dispatched.returncode == 0, dispatched.stderr
    assert cli.queued_messages() == {job["id"]}
    status = cli.json("status", job["id"])
    assert [event["to_state"] for event in status["events"]] == ["queued"]

    assert cli.run("intake", "keys", "revoke", "lms").returncode == 0
    assert post_document(intake.url, key, "after revoke").status_code == 401
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it for the exit status.
    assert intake.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in intake.log()
    assert key not in intake.log()


def test_a_dead_broker_makes_readyz_503_and_documents_still_202(
    cli: Cli, intake_process: Callable[..., IntakeProcess]
) -> None:
    key, _ = add_key(cli, "--name", "lms", "--tenant", TENANT)
    intake = intake_process(YFDOCS_BROKER_URL=DEAD_BROKER)
    ready = requests.get(f"{intake.url}/readyz", timeout=30)
    assert ready.status_code == 503
    assert ready.json()["database"] == "ok"
    assert ready.json()["broker"].startswith("unreachable")
    answer = post_document(intake.url, key, "outbox")
    assert answer.status_code == 202
    assert (answer.json()["state"], answer.json()["published_at"]) == ("queued", None)
    listed = cli.json("status", "--state", "queued")
    assert [job["id"] for job in listed] == [answer.json()["id"]]


def test_unmatched_jobs_show_in_status_with_their_reason(
    cli: Cli, intake_process: Callable[..., IntakeProcess], tmp_path: Path
) -> None:
    key, _ = add_key(cli, "--name", "lms", "--tenant", TENANT)
    intake = intake_process()
    answer = requests.post(
        f"{intake.url}/v1/documents",
        headers={"Authorization": f"Bearer {key}"},
        files={"file": ("a.pdf", make_pdf(text="waiting"), "application/pdf")},
        data={"document_type": "certificate", "email": "new.starter@example.nl"},
        timeout=30,
    )
    assert answer.status_code == 202
    table = cli.run("status", "--state", "unmatched")
    assert table.returncode == 0
    assert "unmatched" in table.stdout
    assert "no person with" in table.stdout
    fleet = cli.json("status", "--fleet")
    assert fleet["jobs_by_state"]["unmatched"] == 1
