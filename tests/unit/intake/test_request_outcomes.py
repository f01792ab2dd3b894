"""How the intake's request counter reads an answer: the status table, the outcome a 2xx
declares (and takes off), the paths it leaves out, and the metrics token check."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from intake.http.metrics import RequestCounter, metrics, outcome_for
from intake.http.responses import OUTCOME_HEADER
from monitoring.exposition import bearer_token_matches
from monitoring.process_metrics import INTAKE_OUTCOMES, INTAKE_REQUESTS


@pytest.mark.parametrize(
    ("status", "declared", "outcome"),
    [
        (202, "accepted", "accepted"),
        (200, "accepted", "accepted"),
        (202, "duplicate", "duplicate"),
        (200, "duplicate", "duplicate"),
        (200, None, None),  # a read, the OpenAPI page, an ignored event
        (201, None, None),
        (200, "bogus", None),
        (400, None, "refused"),
        (409, None, "refused"),
        (413, None, "refused"),
        (415, None, "refused"),
        (422, None, "refused"),
        (422, "accepted", "refused"),  # only a 2xx declares
        (401, None, "unauthorised"),
        (403, None, "unauthorised"),
        (503, None, "unavailable"),
        (404, None, None),
        (405, None, None),
        (500, None, None),
    ],
)
def test_the_outcome_of_an_answer(status: int, declared: str | None, outcome: str | None) -> None:
    assert outcome_for(status, declared) == outcome


def counted() -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(INTAKE_REQUESTS)
    values = {
        outcome: registry.get_sample_value("yfdocs_intake_requests_total", {"outcome": outcome})
        for outcome in INTAKE_OUTCOMES
    }
    return {outcome: value for outcome, value in values.items() if value is not None}


def answer(
    path: str, status: int, headers: list[tuple[bytes, bytes]]
) -> tuple[list[Message], dict[str, float]]:
    """What `RequestCounter` sends on for an app answering `status` with `headers`, and how
    far each outcome moved."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    before = counted()
    scope: Scope = {"type": "http", "path": path, "method": "POST", "headers": []}
    asyncio.run(RequestCounter(app)(scope, receive, send))
    after = counted()
    return sent, {outcome: after[outcome] - before[outcome] for outcome in INTAKE_OUTCOMES}


def test_a_declared_outcome_is_counted_and_taken_off_the_answer() -> None:
    declared = (OUTCOME_HEADER.encode(), b"duplicate")
    location = (b"location", b"/v1/jobs/1")
    sent, moved = answer("/v1/documents", 202, [location, declared])
    assert moved == {**dict.fromkeys(INTAKE_OUTCOMES, 0.0), "duplicate": 1.0}
    assert sent[0]["headers"] == [location]
    assert sent[1] == {"type": "http.response.body", "body": b"{}"}


def test_errors_count_by_status_and_probes_not_at_all() -> None:
    assert answer("/v1/moodle/lms", 403, [])[1]["unauthorised"] == 1
    for path in ("/healthz", "/readyz", "/metrics"):
        sent, moved = answer(path, 503, [(OUTCOME_HEADER.encode(), b"accepted")])
        assert set(moved.values()) == {0.0}, path
        assert sent[0]["status"] == 503


@pytest.mark.parametrize(
    ("authorization", "token", "matches"),
    [
        (None, None, True),
        ("Bearer anything", "", True),
        ("Bearer s3cret", "s3cret", True),
        ("bearer  s3cret ", "s3cret", True),
        (None, "s3cret", False),
        ("", "s3cret", False),
        ("Bearer s3cre", "s3cret", False),
        ("Bearer s3cretx", "s3cret", False),
        ("Basic s3cret", "s3cret", False),
        ("s3cret", "s3cret", False),
    ],
)
def test_the_metrics_token_check(
    authorization: str | None, token: str | None, matches: bool
) -> None:
    assert bearer_token_matches(authorization, token) is matches


def _metrics_request(client_host: str, authorization: str | None = None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    app = SimpleNamespace(
        state=SimpleNamespace(
            services=SimpleNamespace(settings=SimpleNamespace(metrics_token=None)),
            metrics_registry=CollectorRegistry(),
        )
    )
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/metrics",
        "headers": headers,
        "client": (client_host, 50000),
        "app": app,
    }
    return Request(scope)


def test_without_a_token_the_metrics_answer_only_this_machine() -> None:
    assert metrics(_metrics_request("127.0.0.1")).status_code == 200
    refused = metrics(_metrics_request("10.1.2.3"))
    assert refused.status_code == 403
    assert b"YFDOCS_METRICS_TOKEN" in refused.body
