"""Canvas Live Events through the real server: an RS256-signed course_completed checked
against a JWKS served on loopback, a bad signature, a foreign root account, unsigned events
with and without the key, the certificate fetched by URL template, the business key and
same-content dedupe when Canvas repeats an event."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.pdf_samples import make_pdf
from tests.plugins.https_fixtures import CertificateServer, Reply
from tests.plugins.intake_fixtures import IntakeUnderTest, StartIntake

ACCOUNT = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
USER, COURSE = "21070000000000123", "21070000000000042"


class JwksServer:
    """Canvas's key set, served over http on 127.0.0.1 (loopback may be plain http)."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/jwks.json"

    def publish(self, key: rsa.RSAPrivateKey, kid: str) -> None:
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        self.keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.stop()


@pytest.fixture
def signing_key(jwks: JwksServer) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.publish(key, "canvas-2026-12")
    return key


@pytest.fixture
def canvas(
    start_intake: StartIntake, jwks: JwksServer, certificate_server: CertificateServer
) -> IntakeUnderTest:
    intake = start_intake(
        canvas_jwks_url=jwks.url,
        canvas_certificate_url=certificate_server.url("/canvas/{course_id}/{user_id}.pdf"),
    )
    intake.add_key("canvas", fetch_hosts=("localhost", "127.0.0.1"), canvas_accounts=(ACCOUNT,))
    certificate_server.routes[f"/canvas/{COURSE}/{USER}.pdf"] = Reply(body=certificate_server.pdf)
    return intake


def completed(completed_at: str = "2026-11-30T14:02:11Z", **metadata: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "event_name": "course_completed",
            "event_time": "2026-11-30T14:02:11.000Z",
            "user_id": USER,
            "user_login": "jan.devries",
            "user_sis_id": "191166",
            "root_account_uuid": ACCOUNT,
            **metadata,
        },
        "body": {
            "course": {"id": COURSE, "name": "BHV basis", "sis_source_id": "BHV-01"},
            "progress": {"completed_at": completed_at, "requirement_count": 5},
            "user": {"id": USER, "name": "Jan de Vries", "email": "jan.devries@example.nl"},
        },
    }


def signed(event: dict[str, Any], key: rsa.RSAPrivateKey, kid: str = "canvas-2026-12") -> bytes:
    return jwt.encode(event, key, algorithm="RS256", headers={"kid": kid}).encode()


def post(canvas: IntakeUnderTest, body: bytes, **headers: str) -> Any:
    return canvas.post(
        "/v1/canvas/canvas", data=body, headers={"Content-Type": "application/jwt", **headers}
    )


def test_a_signed_course_completed_becomes_a_job_with_the_fetched_certificate(
    canvas: IntakeUnderTest, signing_key: rsa.RSAPrivateKey, certificate_server: CertificateServer
) -> None:
    answer = post(canvas, signed(completed(), signing_key))
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert (job["state"], job["source"]) == ("unmatched", "canvas")  # persons not synced
    assert (job["learner_email"], job["learner_employee_number"]) == (
        "jan.devries@example.nl",
        "191166",
    )
    assert (job["description"], job["valid_from"]) == ("Certificate: BHV basis", "2026-11-30")
    assert certificate_server.requests[-1][0] == f"/canvas/{COURSE}/{USER}.pdf"
    with canvas.services.store.open(canvas.job(job["id"]).storage_key) as stored:
        assert stored.read() == certificate_server.pdf


def test_a_bad_signature_or_an_unknown_key_is_refused(
    canvas: IntakeUnderTest, signing_key: rsa.RSAPrivateKey
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for body in (
        signed(completed(), stranger),  # the right kid, the wrong key
        signed(completed(), stranger, kid="not-published"),
        signed(completed(), signing_key)[:-8] + b"AAAAAAAA",
        b"not.a.jwt",
    ):
        answer = post(canvas, body)
        assert answer.status_code == 401, answer.text
    hs256 = jwt.encode(completed(), "s" * 32, algorithm="HS256", headers={"kid": "canvas-2026-12"})
    assert post(canvas, hs256.encode()).status_code == 401
    assert canvas.job_count() == 0


def test_a_signed_event_of_another_institution_is_refused(
    canvas: IntakeUnderTest, signing_key: rsa.RSAPrivateKey
) -> None:
    answer = post(canvas, signed(completed(root_account_uuid="SomeOtherSchool1234"), signing_key))
    assert answer.status_code == 403
    assert answer.json()["field"] == "metadata.root_account_uuid"
    assert canvas.job_count() == 0


def test_an_unsigned_event_needs_this_urls_own_key(canvas: IntakeUnderTest) -> None:
    body = json.dumps(completed()).encode()
    assert post(canvas, body, **{"Content-Type": "application/json"}).status_code == 401
    canvas.add_key("someone-else")
    wrong = post(canvas, body, Authorization=canvas.bearer("someone-else")["Authorization"])
    assert wrong.status_code == 401
    right = post(canvas, body, Authorization=canvas.bearer("canvas")["Authorization"])
    assert right.status_code == 202, right.text


def test_a_redelivery_or_a_new_time_for_the_same_certificate_is_one_job_a_new_one_another(
    canvas: IntakeUnderTest, signing_key: rsa.RSAPrivateKey, certificate_server: CertificateServer
) -> None:
    first = post(canvas, signed(completed(), signing_key)).json()
    redelivered = post(canvas, signed(completed(request_id="retry-2"), signing_key)).json()
    assert (redelivered["id"], redelivered["created"]) == (first["id"], False)
    fetched = len(certificate_server.requests)
    assert fetched == 1  # the redelivery did not download the certificate again
    # Canvas repeats the event when the completion time is updated: another business key,
    # so the certificate is fetched again; the very same PDF is the same document, though
    # (identical content is one job, whatever the key), and the repeat is in its history.
    moved = post(canvas, signed(completed("2026-12-01T09:00:00Z"), signing_key)).json()
    assert len(certificate_server.requests) == fetched + 1
    assert (moved["id"], moved["created"]) == (first["id"], False)
    assert "enqueued again by canvas" in canvas.events(first["id"])[-1].reason
    # A certificate issued anew for the new time is a new document: another job.
    certificate_server.routes[f"/canvas/{COURSE}/{USER}.pdf"] = Reply(body=make_pdf(text="v2"))
    reissued = post(canvas, signed(completed("2026-12-02T09:00:00Z"), signing_key)).json()
    assert reissued["created"] is True
    assert reissued["id"] != first["id"]
    assert canvas.job_count() == 2


def test_other_events_are_acknowledged_and_events_without_a_certificate_refused(
    start_intake: StartIntake, jwks: JwksServer, signing_key: rsa.RSAPrivateKey
) -> None:
    intake = start_intake(canvas_jwks_url=jwks.url)  # no certificate URL template
    intake.add_key("canvas", canvas_accounts=(ACCOUNT,))
    other = completed()
    other["metadata"]["event_name"] = "grade_change"
    answer = post(intake, signed(other, signing_key))
    assert answer.status_code == 200
    assert answer.json() == {"ignored": "Canvas event 'grade_change' is not course_completed"}
    refused = post(intake, signed(completed(), signing_key))
    assert refused.status_code == 422
    assert refused.json()["field"] == "certificate_url"
    assert "YFDOCS_CANVAS_CERTIFICATE_URL" in refused.json()["detail"]
    assert intake.job_count() == 0
