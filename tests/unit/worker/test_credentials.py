"""Refused credentials hold jobs back (no attempt spent, nothing failed) until the fleet may
ask again, or until a worker starts with other credentials."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from rich.console import Console

from api_client import CredentialsRejectedError, TokenRefusal, credentials_fingerprint
from models import JobState
from scheduling.credentials import release_credential_holds
from scheduling.token_cache import DatabaseTokenCache
from tests.unit.worker.conftest import Harness, receipt
from worker.poll_step import poll_job
from worker.upload_step import upload_job
from yfdocs.fleet_view import fleet_summary, render_fleet

KEY = "https://login.test/connect/token|client|4028868"


def _refused(h: Harness, wait: float = 900.0) -> CredentialsRejectedError:
    return CredentialsRejectedError(
        "POST https://login.test/connect/token -> 401: wrong secret",
        status_code=401,
        api_message="wrong secret",
        error_code="invalid_client",
        retry_at=h.now[0] + timedelta(seconds=wait),
    )


def _remember_refusal(h: Harness, credentials: str, wait: float = 900.0) -> None:
    at = h.now[0]
    DatabaseTokenCache(h.engine, owner="test", clock=lambda: at).set_refusal(
        KEY, TokenRefusal("wrong secret", at, at + timedelta(seconds=wait), credentials, 1)
    )


def test_an_upload_meeting_refused_credentials_waits_without_spending_an_attempt(
    h: Harness,
) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(_refused(h))

    outcome = upload_job(h.rt, job_id)

    job = h.job(job_id)
    assert outcome.action.startswith("deferred until")
    assert job.job_state is JobState.QUEUED
    assert job.attempts == 0
    assert job.not_before == h.now[0] + timedelta(seconds=900)
    reason = h.events(job_id)[-1].reason
    assert "refused the app's credentials (wrong secret)" in reason
    assert "YFDOCS_CLIENT_SECRET" in reason
    h.assert_dispatched_when_due("upload", job_id, h.now[0] + timedelta(seconds=900))


def test_a_poll_meeting_refused_credentials_waits_and_keeps_its_count(h: Harness) -> None:
    job_id = h.polling_job()
    h.advance(30)
    h.client.status_answers.append(_refused(h, wait=1800))

    poll_job(h.rt, job_id)

    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.poll_count == 0
    assert job.next_poll_at == h.now[0] + timedelta(seconds=1800)


def test_a_worker_with_new_credentials_releases_the_held_jobs(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(client_id="client", client_secret="new-secret")
    # The old credentials were refused now; the fleet may ask again in 900 s.
    _remember_refusal(h, credentials_fingerprint("client", "old-secret"), wait=900)
    held_upload = h.enqueue()
    h.client.upload_answers.append(_refused(h, wait=900))
    upload_job(h.rt, held_upload)
    held_poll = h.polling_job()
    h.client.status_answers.append(_refused(h, wait=900))
    h.advance(30)
    poll_job(h.rt, held_poll)
    other = h.enqueue()
    h.update(other, not_before=h.now[0] + timedelta(hours=2))  # waits for something else
    assert h.job(held_upload).not_before == h.job(held_poll).next_poll_at

    released = release_credential_holds(h.engine, h.rt.settings, h.now[0])

    assert released == 2
    assert h.job(held_upload).not_before == h.now[0]
    assert h.job(held_poll).next_poll_at == h.now[0]
    assert h.job(other).not_before == h.now[0] + timedelta(hours=2)
    assert "new credentials" in h.events(held_upload)[-1].reason
    assert DatabaseTokenCache(h.engine, owner="test").refusal(KEY) is None
    h.dispatch()
    assert sorted(h.publisher.sent) == sorted([("upload", held_upload), ("poll", held_poll)]), (
        "the released jobs go at once; the other one keeps waiting"
    )


def test_the_same_credentials_release_nothing(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(client_id="client", client_secret="same-secret")
    job_id = h.enqueue()
    h.update(job_id, not_before=h.now[0] + timedelta(seconds=900))
    _remember_refusal(h, credentials_fingerprint("client", "same-secret"))

    assert release_credential_holds(h.engine, h.rt.settings, h.now[0]) == 0
    assert h.job(job_id).not_before == h.now[0] + timedelta(seconds=900)
    assert DatabaseTokenCache(h.engine, owner="test").refusal(KEY) is not None


def test_the_fleet_view_names_refused_credentials(h: Harness) -> None:
    _remember_refusal(h, "f1ngerprint")

    summary = fleet_summary(h.engine, h.rt.settings, h.now[0])

    (refused,) = summary.as_dict()["credentials_refused"]
    assert refused["tenant_id"] == "4028868"
    assert refused["reason"] == "wrong secret"
    console = Console(record=True, width=240)
    console.print(render_fleet(summary))
    assert "refused by the token endpoint for tenant 4028868" in console.export_text()


def test_after_the_wait_the_upload_goes_ahead_as_its_first_attempt(h: Harness) -> None:
    job_id = h.enqueue()
    h.client.upload_answers.append(_refused(h))
    upload_job(h.rt, job_id)
    h.advance(900)
    h.client.upload_answers.append(receipt("tkt-9"))

    upload_job(h.rt, job_id)

    job = h.job(job_id)
    assert job.job_state is JobState.POLLING
    assert job.attempts == 1
