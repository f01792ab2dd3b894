"""The intake's FastAPI app: the routes, the body limits, the error handlers, and around
them all the request counter (`intake.http.metrics`), with `/metrics` to read it.

The whole request is capped before it is read into memory: Starlette's body limit refuses
a Content-Length over the cap at once and stops a chunked body when it passes the cap
(413). The cap is the largest PDF plus room for the form around it; JSON events, which
carry no PDF, get a smaller one. An answer 202 is sent only after the job's commit, and
the document store writes atomically, so an intake killed mid-request loses nothing it
answered and leaves nothing half-stored.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI
from starlette.types import ASGIApp

from intake.events import IntakeServices
from intake.http.errors import install_error_handlers
from intake.http.metrics import RequestCounter
from intake.http.metrics import router as metrics_routes
from intake.http.routes import ReadinessCheck
from intake.http.routes import router as intake_routes
from intake.http.webhooks import router as webhook_routes
from intake.sources.canvas import check_certificate_url_template
from monitoring.exposition import metrics_registry

__all__ = ["FORM_OVERHEAD_BYTES", "create_app"]

FORM_OVERHEAD_BYTES = 1 << 20  # the multipart framing and the form's other fields
API_VERSION = "1.0"


class _IntakeApp(FastAPI):
    """FastAPI with the request counter outermost: outside the body limit, whose 413 for
    a Content-Length over the cap is answered before any user middleware would see it."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestCounter(super().build_middleware_stack())


def create_app(
    services: IntakeServices, *, readiness: Mapping[str, ReadinessCheck] | None = None
) -> FastAPI:
    """The intake for these services; `readiness` adds checks to `/readyz` (the broker's,
    which the command knows how to make: the intake itself never talks to the broker)."""
    if services.settings.canvas_certificate_url is not None:
        check_certificate_url_template(services.settings.canvas_certificate_url)
    app = _IntakeApp(
        title="yfdocs intake",
        version=API_VERSION,
        description="LMS completion events in; Youforce personnel-file uploads out.",
        max_body_size=services.settings.max_file_bytes + FORM_OVERHEAD_BYTES,
    )
    app.state.services = services
    app.state.readiness = dict(readiness or {})
    app.state.metrics_registry = metrics_registry(
        services.engine, services.settings, process_metrics=True
    )
    install_error_handlers(app)
    app.include_router(intake_routes)
    app.include_router(webhook_routes)
    app.include_router(metrics_routes)
    return app
