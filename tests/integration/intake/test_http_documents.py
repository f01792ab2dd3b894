"""`POST /v1/documents`, `GET /v1/jobs`, health and the intake's keys, through a real
uvicorn server on SQLite and PostgreSQL: answers, refusals that name the field and store
nothing, tenant isolation, revocation, size caps, and 503 for transient problems."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import requests

from intake.callers import revoke_key
from intake.events import IntakeServices
from intake.http import create_app
from models import make_engine, utcnow
from models.persons import PersonEntry, apply_person_changes
from tests.fake_publisher import FakePublisher
from tests.pdf_samples import make_encrypted_pdf, make_pdf
from tests.plugins.intake_fixtures import (
    OTHER_TENANT,
    TENANT,
    IntakeUnderTest,
    UvicornThread,
)


def form(**fields: str) -> dict[str, str]:
    values = {"document_type": "certificate", "person_code": "191166"}
    values.update(fields)
    return {name: value for name, value in values.items() if value != ""}


def send(
    intake: IntakeUnderTest, pdf: bytes, *, key: str = "lms", **fields: str
) -> requests.Response:
    return intake.post(
        "/v1/documents",
        headers=intake.bearer(key),
        files={"file": ("BHV basis.pdf", pdf, "application/pdf")},
        data=form(**fields),
    )


def test_a_document_is_accepted_fast_with_its_job_and_links(intake: IntakeUnderTest) -> None:
    pdf = make_pdf(text="bhv")
    answer = send(intake, pdf, event_id="lms-42", description="BHV basis", valid_from="2026-11-30")
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["state"] == "queued"
    assert job["created"] is True
    assert job["links"] == {"self": f"/v1/jobs/{job['id']}"}
    assert answer.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert (job["tenant_id"], job["person_code"], job["source"]) == (TENANT, "191166", "intake")
    assert (job["file_name"], job["valid_from"]) == ("BHV basis.pdf", "2026-11-30")
    # Committed, not published: the dispatcher sends it.
    assert intake.job(job["id"]).published_at is None
    assert intake.dispatch() == [job["id"]]
    with intake.services.store.open(intake.job(job["id"]).storage_key) as stored:
        assert stored.read() == pdf


def test_the_same_event_id_from_the_same_caller_is_the_same_job(intake: IntakeUnderTest) -> None:
    pdf = make_pdf(text="again")
    first = send(intake, pdf, event_id="evt-1").json()
    again = send(intake, pdf, event_id="evt-1")
    assert again.status_code == 202
    assert (again.json()["id"], again.json()["created"]) == (first["id"], False)
    conflict = send(intake, make_pdf(text="other"), event_id="evt-1")
    assert conflict.status_code == 409
    assert conflict.json()["field"] == "event_id"
    # Another caller of the same tenant numbering its events alike is another job.
    intake.add_key("other-lms", (TENANT,))
    theirs = send(intake, make_pdf(text="theirs"), key="other-lms", event_id="evt-1")
    assert theirs.status_code == 202
    assert theirs.json()["id"] != first["id"]
    assert intake.job_count() == 2


def test_refusals_name_the_field_and_store_nothing(intake: IntakeUnderTest) -> None:
    cases: list[tuple[bytes, dict[str, str], int, str, str]] = [
        (make_pdf(text="a"), {"document_type": "passport"}, 422, "document_type", "unknown"),
        (make_pdf(text="b"), {"person_code": "../x"}, 422, "person_code", "invalid personCode"),
        (make_pdf(text="c"), {"valid_from": "2024-02-30"}, 422, "valid_from", "no such"),
        (make_pdf(text="d"), {"person_code": "", "email": "nope"}, 422, "email", "invalid e-mail"),
        (make_pdf(text="e"), {"person_code": ""}, 422, "person_code", "no learner"),
        (b"\x89PNG\r\n\x1a\n not a pdf", {}, 422, "file", "not a PDF"),
        (make_encrypted_pdf(), {}, 422, "file", "encrypted"),
        (make_pdf(text="f"), {"event_id": "x" * 102}, 422, "event_id", "over 110"),
        (make_pdf(text="g"), {"event_id": "a\x07b"}, 422, "event_id", "control"),
        (make_pdf(pad_to=400_001), {}, 413, "file", "largest accepted is 400,000"),
    ]
    for pdf, fields, status, field, message in cases:
        answer = send(intake, pdf, **fields)
        assert answer.status_code == status, (fields, answer.text)
        body = answer.json()
        assert body["field"] == field, fields
        assert message in body["detail"], (fields, body)
    missing = intake.post("/v1/documents", headers=intake.bearer(), data=form())
    assert missing.status_code == 422
    assert missing.json()["field"] == "file"
    assert intake.job_count() == 0
    assert intake.stored_files() == []
    assert intake.dispatch() == []


def test_keys_authenticate_own_tenants_and_stop_working_when_revoked(
    intake: IntakeUnderTest,
) -> None:
    pdf = make_pdf(text="auth")
    files = {"file": ("a.pdf", pdf, "application/pdf")}
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        answer = intake.post("/v1/documents", headers=headers, files=files, data=form())
        assert answer.status_code == 401, headers
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    forged = intake.keys["lms"].key[:-4] + "AAAA"
    answer = intake.post(
        "/v1/documents", headers={"Authorization": f"Bearer {forged}"}, files=files, data=form()
    )
    assert answer.status_code == 401
    foreign = send(intake, pdf, tenant_id=OTHER_TENANT)
    assert foreign.status_code == 403
    assert foreign.json()["field"] == "tenant_id"
    assert send(intake, pdf, tenant_id=TENANT).status_code == 202

    assert revoke_key(intake.engine, "lms")
    assert send(intake, make_pdf(text="after")).status_code == 401
    assert intake.job_count() == 1


def test_a_key_for_several_tenants_must_name_one(intake: IntakeUnderTest) -> None:
    intake.add_key("multi", (TENANT, OTHER_TENANT))
    unnamed = send(intake, make_pdf(text="m1"), key="multi")
    assert unnamed.status_code == 422
    assert unnamed.json()["field"] == "tenant_id"
    named = send(intake, make_pdf(text="m2"), key="multi", tenant_id=OTHER_TENANT)
    assert named.status_code == 202
    assert named.json()["tenant_id"] == OTHER_TENANT


def test_jobs_are_read_back_only_for_the_callers_own_tenants(intake: IntakeUnderTest) -> None:
    intake.add_key("neighbour", (OTHER_TENANT,))
    mine = send(intake, make_pdf(text="mine")).json()
    theirs = send(intake, make_pdf(text="theirs"), key="neighbour").json()

    one = intake.get(f"/v1/jobs/{mine['id']}", headers=intake.bearer())
    assert one.status_code == 200
    body = one.json()
    assert body["id"] == mine["id"]
    assert [(e["from_state"], e["to_state"]) for e in body["events"]] == [(None, "queued")]
    hidden = intake.get(f"/v1/jobs/{theirs['id']}", headers=intake.bearer())
    assert hidden.status_code == 404
    assert intake.get("/v1/jobs/nope", headers=intake.bearer()).status_code == 404

    listed = intake.get("/v1/jobs", headers=intake.bearer()).json()
    assert [job["id"] for job in listed] == [mine["id"]]
    send(intake, make_pdf(text="second"))
    assert len(intake.get("/v1/jobs?limit=1", headers=intake.bearer()).json()) == 1
    assert intake.get("/v1/jobs?state=failed", headers=intake.bearer()).json() == []
    later = (utcnow() + timedelta(hours=1)).isoformat()
    assert intake.get("/v1/jobs", params={"since": later}, headers=intake.bearer()).json() == []
    assert intake.get("/v1/jobs?state=lost", headers=intake.bearer()).status_code == 422
    assert intake.get("/v1/jobs?limit=0", headers=intake.bearer()).status_code == 422
    far = intake.get(
        "/v1/jobs", params={"since": "0001-01-01T00:00:00+05:00"}, headers=intake.bearer()
    )
    assert far.status_code == 422
    assert intake.get("/v1/jobs").status_code == 401


def test_a_learner_named_by_email_is_matched_or_waits_unmatched(intake: IntakeUnderTest) -> None:
    apply_person_changes(
        intake.engine,
        TENANT,
        upserts=[PersonEntry("191166", "191166", (("jan@example.nl", "Business"),), None)],
        deletions=[],
        now=utcnow(),
    )
    matched = send(intake, make_pdf(text="jan"), person_code="", email="Jan@Example.nl").json()
    assert (matched["state"], matched["person_code"]) == ("queued", "191166")
    waiting = send(intake, make_pdf(text="new"), person_code="", employee_number="555001")
    assert waiting.status_code == 202
    job = waiting.json()
    assert (job["state"], job["learner_employee_number"]) == ("unmatched", "555001")
    assert "no person with employee number 555001" in job["error"]
    assert intake.dispatch() == [matched["id"]]  # nothing to send for the unmatched one


def test_bodies_over_the_cap_are_refused_before_they_are_read(intake: IntakeUnderTest) -> None:
    cap = intake.services.settings.max_file_bytes + (1 << 20)
    with socket.create_connection(("127.0.0.1", int(intake.url.rsplit(":", 1)[1]))) as raw:
        raw.sendall(
            b"POST /v1/documents HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {intake.keys['lms'].key}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=b\r\n"
            + f"Content-Length: {cap + 1}\r\n\r\n".encode()
        )
        answer = raw.recv(4096).decode()  # answered with no byte of the body sent
    assert answer.startswith("HTTP/1.1 413")

    def chunks() -> Any:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
        for _ in range(cap // 65536 + 2):
            yield b"0" * 65536

    streamed = intake.post(
        "/v1/documents",
        headers={**intake.bearer(), "Content-Type": "multipart/form-data; boundary=b"},
        data=chunks(),
    )
    assert streamed.status_code == 413
    assert intake.job_count() == 0
    assert intake.stored_files() == []


def test_the_intake_needs_no_broker_the_job_waits_for_the_dispatcher(
    intake: IntakeUnderTest,
) -> None:
    # The intake has no publisher at all; a dead broker changes nothing for it.
    answer = send(intake, make_pdf(text="outbox"))
    assert answer.status_code == 202
    job = answer.json()
    assert (job["state"], job["published_at"]) == ("queued", None)
    down = FakePublisher(down=True)
    assert intake.dispatch(publisher=down) == []
    assert down.refused == 1
    assert intake.job(job["id"]).published_at is None  # still waiting, for the next pass
    assert intake.dispatch() == [job["id"]]


def test_health_readiness_and_the_openapi(intake: IntakeUnderTest) -> None:
    assert intake.get("/healthz").json() == {"status": "ok"}
    assert intake.get("/readyz").json() == {"database": "ok"}
    schema = intake.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert {
        "/v1/documents",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/webhooks/standard/{key_name}",
        "/v1/xapi/statements",
        "/v1/canvas/{key_name}",
        "/v1/moodle/{key_name}",
        "/healthz",
        "/readyz",
    } <= paths


def test_a_database_that_is_down_answers_503_on_every_endpoint(
    intake: IntakeUnderTest,
) -> None:
    dead = make_engine("postgresql+psycopg://yfdocs:hunter2@127.0.0.1:1/yfdocs")
    services = IntakeServices(
        settings=intake.services.settings,
        engine=dead,
        store=intake.services.store,
        fetcher=intake.services.fetcher,
    )
    server = UvicornThread(create_app(services, readiness={"broker": lambda: None}))
    url = server.start()
    try:
        key = intake.bearer()
        files = {"file": ("a.pdf", make_pdf(text="down"), "application/pdf")}
        answers = [
            requests.post(f"{url}/v1/documents", headers=key, files=files, data=form(), timeout=30),
            requests.get(f"{url}/v1/jobs", headers=key, timeout=30),
            requests.get(f"{url}/v1/jobs/abc", headers=key, timeout=30),
            requests.post(f"{url}/v1/webhooks/standard/lms", json={}, timeout=30),
            requests.post(f"{url}/v1/xapi/statements", headers=key, json={}, timeout=30),
            requests.post(f"{url}/v1/canvas/lms", json={}, timeout=30),
            requests.post(f"{url}/v1/moodle/lms", data={"a": "b"}, timeout=30),
            requests.get(f"{url}/readyz", timeout=30),
        ]
        for answer in answers:
            assert answer.status_code == 503, (answer.request.url, answer.text)
            assert answer.headers["Retry-After"] == "30"
            assert "hunter2" not in answer.text
        assert answers[-1].json() == {"database": "unreachable: OperationalError", "broker": "ok"}
        assert requests.get(f"{url}/healthz", timeout=30).status_code == 200
    finally:
        server.stop()
        dead.dispose()
