"""`yfdocs intake` killed outright (SIGKILL) while a body is still arriving: whatever it
answered 202 before is kept whole, the half-received request leaves no job and no file,
and a restarted intake serves the same keys and jobs. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable

import requests
from sqlalchemy import func
from sqlmodel import Session, select

from models import UploadJob
from models.tables import DocumentBlob
from tests.pdf_samples import make_pdf
from tests.plugins.cli_fixtures import TENANT, Cli
from tests.plugins.intake_fixtures import IntakeProcess


def stored_documents(cli: Cli) -> dict[str, bytes]:
    """Every stored PDF, whole or not, by name, in the store the fleet uses: files under
    the data dir (staging included) on SQLite, rows of `document_blobs` on PostgreSQL."""
    if cli.engine.dialect.name == "postgresql":
        with Session(cli.engine) as session:
            return {
                f"{blob.storage_key.rsplit('/', 1)[-1]}": blob.content
                for blob in session.exec(select(DocumentBlob))
            }
    root = cli.store_dir
    files = sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []
    return {path.name: path.read_bytes() for path in files}


def test_a_kill_mid_body_keeps_what_was_answered_and_stores_nothing_half(
    cli: Cli, intake_process: Callable[..., IntakeProcess]
) -> None:
    added = cli.run("intake", "keys", "add", "--name", "lms", "--tenant", TENANT)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip().splitlines()[-1]
    intake = intake_process()
    answered_pdf = make_pdf(text="answered before the kill")
    answered = requests.post(
        f"{intake.url}/v1/documents",
        headers={"Authorization": f"Bearer {key}"},
        files={"file": ("kept.pdf", answered_pdf, "application/pdf")},
        data={"document_type": "certificate", "person_code": "191166", "event_id": "kept"},
        timeout=30,
    )
    assert answered.status_code == 202, answered.text

    half_pdf = make_pdf(pad_to=300_000, text="never finished")
    boundary = "cut"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="document_type"\r\n\r\n'
            f'certificate\r\n--{boundary}\r\nContent-Disposition: form-data; name="person_code"'
            f'\r\n\r\n191166\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="half.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
        ).encode()
        + half_pdf
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with socket.create_connection(("127.0.0.1", intake.port), timeout=30) as raw:
        raw.sendall(
            b"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Bearer {key}\r\n".encode()
            + f"Content-Type: multipart/form-data; boundary={boundary}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) * 2 // 3]
        )
        time.sleep(1.0)  # the intake has read what was sent and waits for the rest
        intake.kill()

    with Session(cli.engine) as session:
        jobs = list(session.exec(select(UploadJob)))
        assert session.exec(select(func.count()).select_from(UploadJob)).one() == 1
    (kept,) = jobs
    assert kept.id == answered.json()["id"]
    stored = stored_documents(cli)
    assert list(stored) == [f"{kept.sha256}.pdf"]  # nothing staged, nothing half
    assert hashlib.sha256(stored[f"{kept.sha256}.pdf"]).hexdigest() == kept.sha256
    assert stored[f"{kept.sha256}.pdf"] == answered_pdf

    restarted = intake_process()
    again = requests.get(
        f"{restarted.url}/v1/jobs/{kept.id}", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert again.status_code == 200
    assert again.json()["state"] == "queued"
