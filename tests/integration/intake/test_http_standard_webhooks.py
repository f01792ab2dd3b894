"""Standard Webhooks through the real server: good and bad signatures, rotation, a resend
and a replay, an expired timestamp, a certificate fetched from an allowed HTTPS host."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook

from intake.callers import new_webhook_secret
from tests.plugins.https_fixtures import CertificateServer, Reply
from tests.plugins.intake_fixtures import OTHER_TENANT, TENANT, IntakeUnderTest, StartIntake


@pytest.fixture
def hooks(start_intake: StartIntake, certificate_server: CertificateServer) -> IntakeUnderTest:
    intake = start_intake()
    intake.add_key(
        "academy",
        (TENANT, OTHER_TENANT),
        webhook_secret=new_webhook_secret(),
        fetch_hosts=("localhost", "127.0.0.1"),
    )
    intake.add_key("plain")  # no webhook secret
    return intake


def payload(server: CertificateServer, **data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenant_id": TENANT,
        "user": {"email": "jan.devries@example.nl", "person_code": "191166"},
        "course": {"id": "42", "name": "BHV basis"},
        "completed_at": "2026-11-30T14:02:11Z",
        "certificate_url": server.url("/cert.pdf"),
    }
    body.update(data)
    return {"type": "user.certificate.awarded", "timestamp": "2026-11-30T14:02:11Z", "data": body}


def delivery(
    secret: str,
    message: dict[str, Any],
    *,
    message_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    at: float | None = None,
    extra_signatures: tuple[str, ...] = (),
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(message).encode()
    stamp = int(at if at is not None else time.time())
    signature = Webhook(secret).sign(
        message_id, datetime.fromtimestamp(stamp, tz=UTC), body.decode()
    )
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": " ".join((*extra_signatures, signature)),
        "Content-Type": "application/json",
    }
    return body, headers


def secret_of(intake: IntakeUnderTest) -> str:
    secret = intake.keys["academy"].webhook_secret
    assert secret is not None
    return secret


def test_a_signed_delivery_becomes_a_job_with_the_fetched_certificate(
    hooks: IntakeUnderTest, certificate_server: CertificateServer
) -> None:
    body, headers = delivery(secret_of(hooks), payload(certificate_server))
    answer = hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert (job["state"], job["source"], job["person_code"]) == (
        "queued",
        "standard-webhooks",
        "191166",
    )
    assert (job["description"], job["valid_from"]) == ("Certificate: BHV basis", "2026-11-30")
    with hooks.services.store.open(hooks.job(job["id"]).storage_key) as stored:
        assert stored.read() == certificate_server.pdf
    assert hooks.keys["academy"].key not in answer.text
    assert secret_of(hooks) not in answer.text


def test_one_good_signature_among_several_is_enough(
    hooks: IntakeUnderTest, certificate_server: CertificateServer
) -> None:
    old = Webhook(new_webhook_secret()).sign("m1", datetime.now(UTC), "x")
    body, headers = delivery(
        secret_of(hooks), payload(certificate_server), message_id="m1", extra_signatures=(old,)
    )
    assert (
        hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers).status_code == 202
    )


@pytest.mark.parametrize(
    "tamper",
    ["body", "signature", "other-secret", "id", "garbage-signature", "not-utf8"],
)
def test_a_bad_signature_is_refused_401_and_nothing_is_stored(
    hooks: IntakeUnderTest, certificate_server: CertificateServer, tamper: str
) -> None:
    body, headers = delivery(secret_of(hooks), payload(certificate_server))
    if tamper == "body":
        body = body.replace(b"191166", b"191167")
    elif tamper == "signature":
        headers["webhook-signature"] = "v1," + "A" * 44
    elif tamper == "other-secret":
        body, headers = delivery(new_webhook_secret(), payload(certificate_server))
    elif tamper == "id":
        headers["webhook-id"] = "msg_other"
    elif tamper == "garbage-signature":
        headers["webhook-signature"] = "no comma here %%%"
    else:
        body = b"\xff\xfe" + body
    answer = hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["field"] == "webhook-signature"
    assert hooks.job_count() == 0
    assert certificate_server.requests == []  # nothing was fetched either


def test_unknown_keys_and_keys_without_a_secret_are_refused(
    hooks: IntakeUnderTest, certificate_server: CertificateServer
) -> None:
    body, headers = delivery(secret_of(hooks), payload(certificate_server))
    assert hooks.post("/v1/webhooks/standard/nobody", data=body, headers=headers).status_code == 401
    assert hooks.post("/v1/webhooks/standard/plain", data=body, headers=headers).status_code == 401


def test_a_resend_is_the_same_job_and_a_replay_is_not_processed_again(
    hooks: IntakeUnderTest, certificate_server: CertificateServer
) -> None:
    body, headers = delivery(secret_of(hooks), payload(certificate_server), message_id="msg_1")
    first = hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers)
    assert first.status_code == 202
    fetched = len(certificate_server.requests)
    # The very same delivery again (a replay within the window) ...
    replay = hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers)
    # ... and the sender's own resend: the same webhook-id, signed anew a minute later.
    body2, headers2 = delivery(
        secret_of(hooks), payload(certificate_server), message_id="msg_1", at=time.time() + 60
    )
    resend = hooks.post("/v1/webhooks/standard/academy", data=body2, headers=headers2)
    for answer in (replay, resend):
        assert answer.status_code == 200
        assert answer.json() == {"duplicate": True, "id": first.json()["id"], "state": "queued"}
    assert hooks.job_count() == 1
    assert len(certificate_server.requests) == fetched  # not downloaded again
    assert hooks.dispatch() == [first.json()["id"]]  # one job for the dispatcher to send


@pytest.mark.parametrize("offset", [-310, 310, -3600])
def test_a_timestamp_outside_five_minutes_is_refused(
    hooks: IntakeUnderTest, certificate_server: CertificateServer, offset: int
) -> None:
    body, headers = delivery(secret_of(hooks), payload(certificate_server), at=time.time() + offset)
    answer = hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["field"] == "webhook-timestamp"
    assert hooks.job_count() == 0


def test_missing_headers_other_types_and_bad_payloads(
    hooks: IntakeUnderTest, certificate_server: CertificateServer
) -> None:
    secret = secret_of(hooks)
    body, headers = delivery(secret, payload(certificate_server))
    del headers["webhook-signature"]
    assert (
        hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers).status_code == 400
    )

    other = {"type": "user.created", "timestamp": "2026-11-30T14:02:11Z", "data": {}}
    body, headers = delivery(secret, other, message_id="m-other")
    answer = hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers)
    assert answer.status_code == 200
    assert answer.json() == {"ignored": "event type 'user.created' is not a completion"}

    body, headers = delivery(
        secret, payload(certificate_server, certificate_url=None), message_id="m3"
    )
    answer = hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers)
    assert answer.status_code == 422
    assert answer.json()["field"] == "certificate_url"

    body, headers = delivery(secret, payload(certificate_server, tenant_id="999"), message_id="m4")
    assert (
        hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers).status_code == 403
    )

    body, headers = delivery(secret, {"type": "course.completed", "data": []}, message_id="m5")
    answer = hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers)
    assert answer.status_code == 400
    assert hooks.job_count() == 0


def test_a_certificate_redirected_to_a_refused_host_is_refused(
    hooks: IntakeUnderTest, certificate_server: CertificateServer
) -> None:
    certificate_server.routes["/moved"] = Reply(
        status=302, headers={"Location": certificate_server.url("/cert.pdf", "127.0.0.2")}
    )
    message = payload(certificate_server, certificate_url=certificate_server.url("/moved"))
    body, headers = delivery(secret_of(hooks), message, message_id="m-moved")
    answer = hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers)
    assert answer.status_code == 422
    assert answer.json()["field"] == "certificate_url"
    assert "127.0.0.2" in answer.json()["detail"]
    assert hooks.job_count() == 0
    assert hooks.stored_files() == []


def test_a_certificate_host_that_is_down_answers_503_so_the_sender_retries(
    hooks: IntakeUnderTest, certificate_server: CertificateServer
) -> None:
    certificate_server.routes["/busy"] = Reply(status=502)
    message = payload(certificate_server, certificate_url=certificate_server.url("/busy"))
    body, headers = delivery(secret_of(hooks), message, message_id="m-busy")
    answer = hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "30"
    assert hooks.job_count() == 0


def test_no_secret_reaches_a_log_line_an_answer_or_a_job_row(
    hooks: IntakeUnderTest, certificate_server: CertificateServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = secret_of(hooks)
    key = hooks.keys["academy"].key
    body, headers = delivery(secret, payload(certificate_server), message_id="m-logs")
    answers = [
        hooks.post("/v1/webhooks/standard/academy", data=body, headers=headers),
        hooks.post("/v1/webhooks/standard/academy", data=body + b" ", headers=headers),
        hooks.post("/v1/documents", headers={"Authorization": f"Bearer {key}x"}),
        hooks.post("/v1/documents", headers={"Authorization": f"Bearer {key}"}, data={"a": "b"}),
    ]
    assert [answer.status_code for answer in answers] == [202, 401, 401, 422]
    job = hooks.job(answers[0].json()["id"])
    row = json.dumps(job.model_dump(), default=str)
    assert "401 webhook-signature does not match" in caplog.text  # the refusals are logged
    for text in (secret, secret.removeprefix("whsec_"), key):
        assert text not in caplog.text
        assert text not in row
        assert all(text not in answer.text for answer in answers)
