"""The metrics as Prometheus reads them: one registry, and its exposition for any server.

`yfdocs metrics` serves this at `/metrics`; the HTTP intake serves the same at its own
`/metrics`, with its request counter added:

    registry = metrics_registry(engine, settings, process_metrics=True)   # once, at start
    body, content_type = render(registry, request.headers.get("accept"))  # per request

`render` speaks the text format, or OpenMetrics when the scraper asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from sqlalchemy.engine import Engine

from config import Settings
from models import utcnow
from monitoring.collector import FleetCollector
from monitoring.process_metrics import INTAKE_REQUESTS

__all__ = ["metrics_registry", "render"]


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
