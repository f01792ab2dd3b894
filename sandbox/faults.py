"""Injected faults, decided once per request from a seeded generator.

Counts (`*_count`) are consumed first, one per request, and show in the live config as they
run down; rates apply after that. With the same seed and the same request order, the same
requests fail.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from sandbox.config import FaultConfig

__all__ = ["FaultInjector", "FaultPlan"]


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong with one request (nothing, by default)."""

    drop_phase: str | None = None
    server_error: int | None = None
    latency_s: float = 0.0
    revoke_tokens: bool = False


class FaultInjector:
    """Draws a FaultPlan per request; thread-safe."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(f"faults:{seed}")

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(f"faults:{seed}")

    def plan(self, faults: FaultConfig) -> FaultPlan:
        with self._lock:
            drop = self._consume(faults, "drop_count", faults.drop_rate)
            error = self._consume(faults, "server_error_count", faults.server_error_rate)
            revoke = self._consume(faults, "revoke_count", faults.revoke_rate)
            status = None
            if error:
                statuses = faults.server_error_statuses or (500,)
                status = statuses[self._rng.randrange(len(statuses))]
            latency = faults.latency_s
            if faults.latency_max_s is not None and faults.latency_max_s > faults.latency_s:
                latency = self._rng.uniform(faults.latency_s, faults.latency_max_s)
            return FaultPlan(
                drop_phase=faults.drop_phase if drop else None,
                server_error=status,
                latency_s=max(latency, 0.0),
                revoke_tokens=revoke,
            )

    def _consume(self, faults: FaultConfig, count_field: str, rate: float) -> bool:
        remaining: int = getattr(faults, count_field)
        if remaining > 0:
            setattr(faults, count_field, remaining - 1)
            return True
        return rate > 0 and self._rng.random() < rate
