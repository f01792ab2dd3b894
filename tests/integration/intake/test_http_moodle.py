"""Moodle's tool_trigger HTTP POST through the real server: the static secret header,
form fields, the certificate fetched within the limits (a redirect to a refused host
included), and 200 as the answer tool_trigger expects."""

from __future__ import annotations

from typing import Any

import pytest

from intake.callers import new_static_secret
from tests.pdf_samples import make_pdf
from tests.plugins.https_fixtures import CertificateServer, Reply
from tests.plugins.intake_fixtures import TENANT, IntakeUnderTest, StartIntake


@pytest.fixture
def moodle(start_intake: StartIntake) -> IntakeUnderTest:
    intake = start_intake()
    intake.add_key(
        "moodle", static_secret=new_static_secret(), fetch_hosts=("localhost", "127.0.0.1")
    )
    return intake


def fields(server: CertificateServer, **overrides: str) -> dict[str, str]:
    values = {
        "user_email": "jan.devries@example.nl",
        "user_idnumber": "191166",
        "courseid": "42",
        "coursefullname": "BHV basis",
        "timecompleted": "1764511331",
        "certificate_url": server.url("/cert.pdf"),
    }
    values.update(overrides)
    return values


def secret(intake: IntakeUnderTest) -> dict[str, str]:
    value = intake.keys["moodle"].static_secret
    assert value is not None
    return {"X-Yfdocs-Secret": value}


def test_a_completion_with_the_secret_header_becomes_a_job_answered_200(
    moodle: IntakeUnderTest, certificate_server: CertificateServer
) -> None:
    answer = moodle.post(
        "/v1/moodle/moodle", data=fields(certificate_server), headers=secret(moodle)
    )
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert (job["source"], job["tenant_id"], job["state"]) == ("moodle", TENANT, "unmatched")
    assert (job["learner_employee_number"], job["valid_from"]) == ("191166", "2025-11-30")
    assert job["description"] == "Certificate: BHV basis"
    assert moodle.job(job["id"]).size_bytes == len(certificate_server.pdf)
    again = moodle.post(
        "/v1/moodle/moodle", data=fields(certificate_server), headers=secret(moodle)
    )
    assert (again.status_code, again.json()["id"], again.json()["created"]) == (
        200,
        job["id"],
        False,
    )
    # The same fields as JSON, for another course and its own certificate: another job.
    certificate_server.routes["/cert-43.pdf"] = Reply(body=make_pdf(text="course 43"))
    other_course = fields(
        certificate_server, courseid="43", certificate_url=certificate_server.url("/cert-43.pdf")
    )
    as_json = moodle.post("/v1/moodle/moodle", json=other_course, headers=secret(moodle))
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["created"] is True
    assert moodle.job_count() == 2


@pytest.mark.parametrize("header", [None, "", "wrong-secret", "x" * 43])
def test_a_missing_or_wrong_secret_is_refused(
    moodle: IntakeUnderTest, certificate_server: CertificateServer, header: str | None
) -> None:
    headers = {} if header is None else {"X-Yfdocs-Secret": header}
    answer = moodle.post("/v1/moodle/moodle", data=fields(certificate_server), headers=headers)
    assert answer.status_code == 401
    assert answer.json()["field"] == "X-Yfdocs-Secret"
    assert moodle.job_count() == 0
    assert certificate_server.requests == []


def test_the_intake_key_is_not_a_moodle_secret_and_other_keys_have_none(
    moodle: IntakeUnderTest, certificate_server: CertificateServer
) -> None:
    key = {"X-Yfdocs-Secret": moodle.keys["moodle"].key}
    assert (
        moodle.post("/v1/moodle/moodle", data=fields(certificate_server), headers=key).status_code
        == 401
    )
    moodle.add_key("no-secret")
    answer = moodle.post(
        "/v1/moodle/no-secret", data=fields(certificate_server), headers=secret(moodle)
    )
    assert answer.status_code == 401
    assert (
        moodle.post(
            "/v1/moodle/nobody", data=fields(certificate_server), headers=secret(moodle)
        ).status_code
        == 401
    )


def test_certificate_urls_are_fetched_only_within_the_limits(
    moodle: IntakeUnderTest, certificate_server: CertificateServer
) -> None:
    server = certificate_server
    server.routes["/view.php"] = Reply(status=303, headers={"Location": "/cert.pdf"})
    ok = moodle.post(
        "/v1/moodle/moodle",
        data=fields(server, courseid="1", certificate_url=server.url("/view.php?code=abc")),
        headers=secret(moodle),
    )
    assert ok.status_code == 200, ok.text
    server.routes["/elsewhere"] = Reply(
        status=302, headers={"Location": "https://lms.example.nl/cert.pdf"}
    )
    cases: list[tuple[dict[str, str], str]] = [
        ({"certificate_url": server.url("/elsewhere")}, "'lms.example.nl' is not on"),
        ({"certificate_url": f"http://localhost:{server.port}/cert.pdf"}, "only https"),
        ({"certificate_url": server.url("/missing.pdf")}, "answered 404"),
        ({"certificate_url": ""}, "names no certificate_url"),
    ]
    for number, (override, message) in enumerate(cases, start=2):
        answer = moodle.post(
            "/v1/moodle/moodle",
            data=fields(server, courseid=str(number), **override),
            headers=secret(moodle),
        )
        assert answer.status_code == 422, (override, answer.text)
        assert answer.json()["field"] == "certificate_url"
        assert message in answer.json()["detail"]
    assert moodle.job_count() == 1


def test_fields_that_are_missing_or_wrong_are_refused(
    moodle: IntakeUnderTest, certificate_server: CertificateServer
) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"courseid": ""}, 400, "courseid"),
        ({"timecompleted": "yesterday"}, 422, "timecompleted"),
        ({"user_email": "", "user_idnumber": ""}, 400, "user_email"),
        ({"tenant_id": "999"}, 403, "tenant_id"),
        ({"document_type": "passport"}, 422, "document_type"),
    ]
    for override, status, field in cases:
        answer = moodle.post(
            "/v1/moodle/moodle", data=fields(certificate_server, **override), headers=secret(moodle)
        )
        assert answer.status_code == status, (override, answer.text)
        assert answer.json()["field"] == field
    assert moodle.job_count() == 0
