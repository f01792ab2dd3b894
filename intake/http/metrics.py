"""The intake's own metrics: every request it answers, counted by outcome, and `GET /metrics`.

**Counting.** `RequestCounter` wraps the whole app, outside FastAPI's body limit (whose
413 for a Content-Length over the cap never reaches a route) and outside the error
handlers, and counts each answer once, when its status goes out, through
`monitoring.process_metrics.count_intake_request`:

    2xx                  the outcome the answer declares in `responses.OUTCOME_HEADER`:
                         `accepted` (a new job), `duplicate` (the job already existed);
                         a 2xx that declares none is not counted
    400 409 413 415 422  `refused`: nothing was stored
    401 403              `unauthorised`
    503                  `unavailable`
    anything else        not counted: 404 (an unknown path, or a job that is not the
                         caller's), 405, and 500 (a bug, logged with its traceback)

So the routes count nothing themselves: a submission's answer (`responses.accepted`,
`responses.duplicate`, xAPI's statement ids) declares what it was, an error's status
says it, and the header is taken off before the answer leaves the process.

What is left out, on purpose: `/healthz`, `/readyz` and `/metrics` themselves (probes and
scrapes, not LMS requests; a `/readyz` 503 is not a request turned away); reads that
succeed (`GET /v1/jobs...` and the OpenAPI pages, 200 with nothing declared); and ignored
events (200 `{"ignored": ...}`, and an xAPI batch whose statements were all ignored),
because `accepted` means a job was stored and an ignored event stores none. A read
refused for its key or its query is counted (`unauthorised`, `refused`).

**Serving.** `GET /metrics` renders the registry `create_app` builds once
(`monitoring.exposition.metrics_registry(..., process_metrics=True)`): the fleet's
numbers from the database (`yfdocs_database_up 0` when it is down) and this process's
`yfdocs_intake_requests_total`. With `YFDOCS_METRICS_TOKEN` set it wants
`Authorization: Bearer <token>` (the check `yfdocs metrics` makes), else 401. Without one
it answers only clients on this machine (403 for others): the metrics name tenants, and
`yfdocs metrics` likewise refuses any other address without a token.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from intake.http.auth import services_of
from intake.http.responses import OUTCOME_HEADER
from monitoring.exposition import bearer_token_matches, render
from monitoring.process_metrics import INTAKE_OUTCOMES, count_intake_request
from monitoring.server import is_loopback

__all__ = ["UNCOUNTED_PATHS", "RequestCounter", "outcome_for", "router"]

UNCOUNTED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_OUTCOME_HEADER = OUTCOME_HEADER.encode("latin-1")
_BY_STATUS = {
    **dict.fromkeys((400, 409, 413, 415, 422), "refused"),
    **dict.fromkeys((401, 403), "unauthorised"),
    503: "unavailable",
}

router = APIRouter()


def outcome_for(status: int, declared: str | None) -> str | None:
    """The outcome an answer counts as, or None for one that is not counted."""
    if 200 <= status < 300:
        return declared if declared in INTAKE_OUTCOMES else None
    return _BY_STATUS.get(status)


class RequestCounter:
    """ASGI middleware: counts every answer of `app` by its outcome (`outcome_for`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                declared: str | None = None
                headers = []
                for name, value in message.get("headers", ()):
                    if name.lower() == _OUTCOME_HEADER:
                        declared = value.decode("latin-1")
                    else:
                        headers.append((name, value))
                # Counted before the status is sent: whoever has the answer sees the count.
                outcome = outcome_for(message["status"], declared)
                if outcome is not None:
                    count_intake_request(outcome)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, counted)


@router.get("/metrics", tags=["health"], response_class=PlainTextResponse)
def metrics(request: Request) -> Response:
    """The Prometheus exposition: the fleet's metrics and this intake's request counter
    (a bearer token required when `YFDOCS_METRICS_TOKEN` is set)."""
    secret = services_of(request).settings.metrics_token
    token = secret.get_secret_value() if secret is not None else None
    client = request.client.host if request.client is not None else ""
    if token is None and not is_loopback(client):
        # The metrics name tenants: without a token only this machine may read them, as
        # `yfdocs metrics` refuses any other address without one.
        return PlainTextResponse(
            "set YFDOCS_METRICS_TOKEN to read the metrics from another host\n", status_code=403
        )
    if not bearer_token_matches(request.headers.get("authorization"), token):
        return PlainTextResponse(
            "a bearer token is required\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="yfdocs metrics"'},
        )
    registry: CollectorRegistry = request.app.state.metrics_registry
    body, content_type = render(registry, request.headers.get("accept"))
    return Response(body, media_type=content_type)
