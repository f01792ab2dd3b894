"""xAPI statements through the real server, as multipart/mixed with attachments: a good
hash, a bad hash, a missing attachment, verbs that are not "done", Basic auth, the
statement id as the idempotency key, the single-PDF fallback and a fileUrl fetched."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import pytest

from models import utcnow
from models.persons import PersonEntry, apply_person_changes
from tests.pdf_samples import make_pdf
from tests.plugins.https_fixtures import CertificateServer
from tests.plugins.intake_fixtures import TENANT, IntakeUnderTest, StartIntake

CERTIFICATE = "http://id.tincanapi.com/attachment/certificate-of-completion"
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"


@pytest.fixture
def lrs(start_intake: StartIntake) -> IntakeUnderTest:
    intake = start_intake()
    intake.add_key("lrs", fetch_hosts=("localhost", "127.0.0.1"))
    apply_person_changes(
        intake.engine,
        TENANT,
        upserts=[PersonEntry("191166", "191166", (("jan.devries@example.nl", "Business"),), None)],
        deletions=[],
        now=utcnow(),
    )
    return intake


def statement(pdf: bytes | None = None, **overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "mbox": "mailto:jan.devries@example.nl"},
        "verb": {"id": COMPLETED, "display": {"en-US": "completed"}},
        "object": {
            "objectType": "Activity",
            "id": "https://lms.example.nl/course/42",
            "definition": {"name": {"nl-NL": "BHV basis"}},
        },
        "result": {"completion": True, "success": True},
        "timestamp": "2026-11-30T14:02:11Z",
    }
    if pdf is not None:
        value["attachments"] = [
            {
                "usageType": CERTIFICATE,
                "display": {"en-US": "Certificate"},
                "contentType": "application/pdf",
                "length": len(pdf),
                "sha2": hashlib.sha256(pdf).hexdigest(),
            }
        ]
    value.update(overrides)
    return value


def multipart(statements: Any, parts: list[tuple[bytes, dict[str, str]]]) -> tuple[bytes, str]:
    boundary = "b7" + uuid.uuid4().hex
    chunks = [
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
        json.dumps(statements).encode(),
        b"\r\n",
    ]
    for content, headers in parts:
        chunks.append(f"--{boundary}\r\n".encode())
        chunks.extend(f"{name}: {value}\r\n".encode() for name, value in headers.items())
        chunks += [b"\r\n", content, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/mixed; boundary={boundary}"


def attachment(pdf: bytes, sha: str | None = None) -> tuple[bytes, dict[str, str]]:
    return pdf, {
        "Content-Type": "application/pdf",
        "Content-Transfer-Encoding": "binary",
        "X-Experience-API-Hash": sha or hashlib.sha256(pdf).hexdigest(),
    }


def post(lrs: IntakeUnderTest, body: bytes, content_type: str, **headers: str) -> Any:
    return lrs.post(
        "/v1/xapi/statements",
        data=body,
        headers={
            **lrs.bearer("lrs"),
            "Content-Type": content_type,
            "X-Experience-API-Version": "1.0.3",
            **headers,
        },
    )


def test_a_completed_statement_with_its_certificate_becomes_a_job(lrs: IntakeUnderTest) -> None:
    pdf = make_pdf(text="xapi certificate")
    sent = statement(pdf)
    body, content_type = multipart(sent, [attachment(pdf)])
    answer = post(lrs, body, content_type)
    assert answer.status_code == 200, answer.text
    assert answer.json() == [sent["id"]]
    assert answer.headers["X-Experience-API-Version"] == "1.0.3"
    (job_id,) = answer.headers["X-Yfdocs-Job-Ids"].split(",")
    job = lrs.job(job_id)
    assert (job.state, job.person_code, job.source) == ("queued", "191166", "xapi")
    assert (job.description, str(job.valid_from)) == ("Certificate: BHV basis", "2026-11-30")
    with lrs.services.store.open(job.storage_key) as stored:
        assert stored.read() == pdf

    again = post(lrs, body, content_type)  # the statement id is the idempotency key
    assert again.headers["X-Yfdocs-Job-Ids"] == job_id
    assert lrs.job_count() == 1


def test_a_part_whose_bytes_do_not_match_its_hash_is_a_400(lrs: IntakeUnderTest) -> None:
    pdf = make_pdf(text="tampered")
    sha = hashlib.sha256(pdf).hexdigest()
    body, content_type = multipart(statement(pdf), [attachment(pdf + b"\n%tampered", sha)])
    answer = post(lrs, body, content_type)
    assert answer.status_code == 400
    assert answer.json()["field"] == "X-Experience-API-Hash"
    wrong = multipart(statement(pdf), [attachment(pdf, sha="0" * 64)])
    assert post(lrs, *wrong).status_code == 400
    assert lrs.job_count() == 0
    assert lrs.stored_files() == []


def test_a_certificate_attachment_without_its_part_is_a_400(lrs: IntakeUnderTest) -> None:
    pdf = make_pdf(text="missing")
    body, content_type = multipart(statement(pdf), [])
    answer = post(lrs, body, content_type)
    assert answer.status_code == 400
    assert answer.json()["field"] == "attachments"
    no_attachment = json.dumps(statement()).encode()
    answer = post(lrs, no_attachment, "application/json")
    assert answer.status_code == 422
    assert answer.json()["field"] == "attachments"
    assert lrs.job_count() == 0


def test_other_verbs_are_acknowledged_and_ignored(lrs: IntakeUnderTest) -> None:
    pdf = make_pdf(text="experienced")
    experienced = statement(pdf, verb={"id": "http://adlnet.gov/expapi/verbs/experienced"})
    passed = statement(pdf, verb={"id": "http://adlnet.gov/expapi/verbs/passed"})
    body, content_type = multipart([experienced, passed], [attachment(pdf)])
    answer = post(lrs, body, content_type)
    assert answer.status_code == 200
    assert answer.json() == [experienced["id"], passed["id"]]
    assert lrs.job_count() == 1


def test_cmi5_satisfied_by_an_account_and_basic_auth(lrs: IntakeUnderTest) -> None:
    pdf = make_pdf(text="cmi5")
    sent = statement(
        pdf,
        actor={"objectType": "Agent", "account": {"homePage": "https://lms", "name": "191166"}},
        verb={"id": "https://w3id.org/xapi/adl/verbs/satisfied"},
    )
    sent["attachments"][0]["usageType"] = "https://example.org/some-other-usage"  # fallback
    body, content_type = multipart(sent, [attachment(pdf)])
    basic = base64.b64encode(f"anyone:{lrs.keys['lrs'].key}".encode()).decode()
    answer = lrs.post(
        "/v1/xapi/statements",
        data=body,
        headers={"Authorization": f"Basic {basic}", "Content-Type": content_type},
    )
    assert answer.status_code == 200, answer.text
    job = lrs.job(answer.headers["X-Yfdocs-Job-Ids"])
    assert job.person_code == "191166"
    bad = base64.b64encode(b"anyone:wrong").decode()
    refused = lrs.post(
        "/v1/xapi/statements",
        data=body,
        headers={"Authorization": f"Basic {bad}", "Content-Type": content_type},
    )
    assert refused.status_code == 401


def test_an_attachment_given_by_file_url_is_fetched(
    lrs: IntakeUnderTest, certificate_server: CertificateServer
) -> None:
    sent = statement(certificate_server.pdf)
    sent["attachments"][0]["fileUrl"] = certificate_server.url("/cert.pdf")
    answer = post(lrs, json.dumps(sent).encode(), "application/json")
    assert answer.status_code == 200, answer.text
    job = lrs.job(answer.headers["X-Yfdocs-Job-Ids"])
    assert job.sha256 == hashlib.sha256(certificate_server.pdf).hexdigest()


def test_malformed_requests_are_400s(lrs: IntakeUnderTest) -> None:
    pdf = make_pdf(text="malformed")
    cases = [
        (b"not json", "application/json"),
        (b"[]", "application/json"),
        (b"--x\r\nContent-Type: application/json\r\n\r\n{}", "multipart/mixed; boundary=x"),
        (b"{}", "text/plain"),
        (json.dumps(statement(pdf, id="not-a-uuid")).encode(), "application/json"),
        (json.dumps(statement(pdf, actor={"objectType": "Group"})).encode(), "application/json"),
        (json.dumps(statement(pdf, verb=[1])).encode(), "application/json"),
    ]
    for body, content_type in cases:
        answer = post(lrs, body, content_type)
        assert answer.status_code == 400, (body[:60], answer.text)
    first_not_json = multipart(statement(pdf), [attachment(pdf)])[0].replace(
        b"Content-Type: application/json", b"Content-Type: text/plain", 1
    )
    boundary = first_not_json.split(b"\r\n", 1)[0][2:].decode()
    assert post(lrs, first_not_json, f"multipart/mixed; boundary={boundary}").status_code == 400
    assert lrs.job_count() == 0
