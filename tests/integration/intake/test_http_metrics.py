"""The intake's `/metrics` through the real server: every answer counted once by its
outcome (the counter is process-global, so each test reads it before and after), probes,
reads and ignored events left out, the fleet's metrics beside it, and the bearer token."""

from __future__ import annotations

import socket

import requests
from prometheus_client.parser import text_string_to_metric_families

from intake.events import IntakeServices
from intake.http import create_app
from models import make_engine, utcnow
from models.persons import PersonEntry, apply_person_changes
from monitoring.process_metrics import INTAKE_OUTCOMES
from tests.integration.intake.test_http_xapi import attachment, multipart, statement
from tests.pdf_samples import make_pdf
from tests.plugins.intake_fixtures import TENANT, IntakeUnderTest, StartIntake, UvicornThread

Counts = dict[str, float]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def counts(url: str, **headers: str) -> Counts:
    """`yfdocs_intake_requests_total` by outcome, as one scrape of `url` reads it."""
    answer = requests.get(f"{url}/metrics", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    read = samples(answer.text)
    return {
        outcome: read[("yfdocs_intake_requests_total", (("outcome", outcome),))]
        for outcome in INTAKE_OUTCOMES
    }


def moved(before: Counts, after: Counts) -> Counts:
    return {outcome: after[outcome] - before[outcome] for outcome in INTAKE_OUTCOMES}


def none_but(**expected: int) -> Counts:
    return {outcome: float(expected.get(outcome, 0)) for outcome in INTAKE_OUTCOMES}


def document(intake: IntakeUnderTest, headers: dict[str, str], **fields: str) -> requests.Response:
    return intake.post(
        "/v1/documents",
        headers=headers,
        files={"file": ("a.pdf", make_pdf(text=fields.get("event_id", "x")), "application/pdf")},
        data={"document_type": "certificate", "person_code": "191166", **fields},
    )


def test_each_answer_moves_its_outcome_by_one(intake: IntakeUnderTest) -> None:
    before = counts(intake.url)

    accepted = document(intake, intake.bearer(), event_id="metrics-1")
    assert accepted.status_code == 202, accepted.text
    assert counts(intake.url) == {**before, "accepted": before["accepted"] + 1}

    duplicate = document(intake, intake.bearer(), event_id="metrics-1")
    assert (duplicate.status_code, duplicate.json()["created"]) == (202, False)
    refused = document(intake, intake.bearer(), event_id="metrics-2", document_type="passport")
    assert refused.status_code == 422
    unauthorised = document(intake, {"Authorization": "Bearer nope"}, event_id="metrics-3")
    assert unauthorised.status_code == 401
    for answer in (accepted, duplicate, refused, unauthorised):
        assert "x-yfdocs-outcome" not in answer.headers  # the declaration stays inside

    # Not counted: probes, scrapes, a read that succeeds, an unknown path, a job not found.
    assert intake.get("/healthz").status_code == 200
    assert intake.get("/readyz").status_code == 200
    assert intake.get("/v1/jobs", headers=intake.bearer()).status_code == 200
    assert intake.get("/v1/nothing-here").status_code == 404
    assert intake.get("/v1/jobs/abc", headers=intake.bearer()).status_code == 404

    after = counts(intake.url)
    assert moved(before, after) == none_but(accepted=1, duplicate=1, refused=1, unauthorised=1)
    assert intake.job_count() == 1


def test_xapi_batches_count_once_and_ignored_statements_not_at_all(
    start_intake: StartIntake,
) -> None:
    lrs = start_intake()
    lrs.add_key("lrs")
    apply_person_changes(
        lrs.engine,
        TENANT,
        upserts=[PersonEntry("191166", "191166", (("jan.devries@example.nl", "Business"),), None)],
        deletions=[],
        now=utcnow(),
    )
    pdf = make_pdf(text="xapi metrics")
    completed = statement(pdf)
    experienced = statement(pdf, verb={"id": "http://adlnet.gov/expapi/verbs/experienced"})

    def post(statements: object) -> requests.Response:
        body, content_type = multipart(statements, [attachment(pdf)])
        headers = {**lrs.bearer("lrs"), "Content-Type": content_type}
        answer = lrs.post("/v1/xapi/statements", data=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer

    before = counts(lrs.url)
    post([completed, experienced])  # one request: one new job
    step = counts(lrs.url)
    assert moved(before, step) == none_but(accepted=1)
    post([completed, experienced])  # the same statements again: the job that exists
    post([experienced])  # nothing but an ignored statement: left out
    assert moved(step, counts(lrs.url)) == none_but(duplicate=1)
    assert lrs.job_count() == 1


def test_a_body_over_the_cap_counts_as_refused(intake: IntakeUnderTest) -> None:
    before = counts(intake.url)
    cap = intake.services.settings.max_file_bytes + (1 << 20)
    with socket.create_connection(("127.0.0.1", int(intake.url.rsplit(":", 1)[1]))) as raw:
        raw.sendall(
            b"POST /v1/documents HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + f"Authorization: Bearer {intake.keys['lms'].key}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=b\r\n"
            + f"Content-Length: {cap + 1}\r\n\r\n".encode()
        )
        # Answered by the app's body limit, before any route or user middleware.
        assert raw.recv(4096).decode().startswith("HTTP/1.1 413")
    assert moved(before, counts(intake.url)) == none_but(refused=1)


def test_a_database_that_is_down_counts_unavailable_and_reports_itself_down(
    intake: IntakeUnderTest,
) -> None:
    dead = make_engine("postgresql+psycopg://yfdocs:hunter2@127.0.0.1:1/yfdocs")
    services = IntakeServices(
        settings=intake.services.settings,
        engine=dead,
        store=intake.services.store,
        fetcher=intake.services.fetcher,
    )
    server = UvicornThread(create_app(services))
    url = server.start()
    try:
        before = counts(url)
        answer = requests.post(
            f"{url}/v1/documents",
            headers=intake.bearer(),
            files={"file": ("a.pdf", make_pdf(text="down"), "application/pdf")},
            data={"document_type": "certificate", "person_code": "191166"},
            timeout=30,
        )
        assert answer.status_code == 503
        assert requests.get(f"{url}/readyz", timeout=30).status_code == 503  # not counted
        assert moved(before, counts(url)) == none_but(unavailable=1)
        scrape = requests.get(f"{url}/metrics", timeout=30)
        assert scrape.status_code == 200
        assert samples(scrape.text)[("yfdocs_database_up", ())] == 0
        assert "hunter2" not in scrape.text
    finally:
        server.stop()
        dead.dispose()


def test_metrics_want_the_bearer_token_when_one_is_set(start_intake: StartIntake) -> None:
    intake = start_intake(metrics_token="scrape-token-7")
    intake.add_key("lms")

    def scrape(**headers: str) -> requests.Response:
        return intake.get("/metrics", headers=headers)

    before = counts(intake.url, Authorization="Bearer scrape-token-7")
    for headers in (
        {},
        {"Authorization": "Bearer scrape-token-8"},
        {"Authorization": "Bearer scrape-token-7x"},
        {"Authorization": "Basic scrape-token-7"},
        intake.bearer(),  # an intake key is not the metrics token
    ):
        refused = scrape(**headers)
        assert refused.status_code == 401, headers
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert "yfdocs_" not in refused.text
    # The routes' own keys are untouched by it, and the scrapes' 401s are not counted.
    assert document(intake, intake.bearer(), event_id="token-1").status_code == 202

    answer = scrape(Authorization="Bearer scrape-token-7")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    read = samples(answer.text)
    assert read[("yfdocs_database_up", ())] == 1
    assert read[("yfdocs_jobs", (("state", "queued"), ("tenant", TENANT)))] == 1
    assert ("yfdocs_token_requests_left", ()) in read
    after = counts(intake.url, Authorization="Bearer scrape-token-7")
    assert moved(before, after) == none_but(accepted=1)

    openmetrics = scrape(
        Authorization="Bearer scrape-token-7", Accept="application/openmetrics-text"
    )
    assert openmetrics.status_code == 200
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")


def test_metrics_are_open_without_a_token(intake: IntakeUnderTest) -> None:
    answer = intake.get("/metrics")
    assert answer.status_code == 200
    assert "# TYPE yfdocs_jobs gauge" in answer.text
    assert "# TYPE yfdocs_intake_requests_total counter" in answer.text
