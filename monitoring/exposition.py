"""The metrics as Prometheus reads them: one registry, and its exposition for any server.

`yfdocs metrics` serves this at `/metrics`; the HTTP intake serves the same at its own
`/metrics`, with its request counter added:

    registry = metrics_registry(engine, settings, process_metrics=True)   # once, at start
    body, content_type = render(registry, request.headers.get("accept"))  # per request

`render` speaks the text format, or OpenMetrics when the scraper asks for it;
`bearer_token_matches` is the check of `YFDOCS_METRICS_TOKEN` a server makes first.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from sqlalchemy.engine import Engine

from config import Settings
from models import utcnow
from monitoring.collector import FleetCollector
from monitoring.process_metrics import INTAKE_REQUESTS

__all__ = ["bearer_token_matches", "metrics_registry", "render"]


def metrics_registry(
    engine: Engine,
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    process_metrics: bool = False,
) -> CollectorRegistry:
    """A registry of the fleet's metrics (and, with `process_metrics`, this process's
    own counters: the intake's requests)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(engine, settings, clock=clock))
    if process_metrics:
        registry.register(INTAKE_REQUESTS)
    return registry


def render(registry: CollectorRegistry, accept: str | None = None) -> tuple[bytes, str]:
    """The exposition of `registry` and its content type, in the format `accept` asks for."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def bearer_token_matches(authorization: str | None, token: str | None) -> bool:
    """Whether an `Authorization` header carries `Bearer <token>`, compared in constant
    time; always true when no token is configured (`None` or empty)."""
    if not token:
        return True
    scheme, _, offered = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        offered.strip().encode(), token.encode()
    )
