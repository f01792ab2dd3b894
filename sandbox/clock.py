"""API time: wall time sped up by `time_scale`, so tests can live through hours in seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["ApiClock", "format_creation_time", "format_issued_at", "format_utc_millis"]


class ApiClock:
    """Maps a monotonic wall clock onto API time (epoch seconds) at a changeable rate.

    Changing the scale rebases the clock, so API time never jumps or runs backwards.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        start_epoch: float | None = None,
    ) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._scale = time_scale
        self._base_wall = monotonic()
        self._base_api = time.time() if start_epoch is None else start_epoch

    @property
    def time_scale(self) -> float:
        return self._scale

    def now(self) -> float:
        """API time in epoch seconds."""
        wall = self._monotonic()
        with self._lock:
            return self._base_api + (wall - self._base_wall) * self._scale

    def set_scale(self, time_scale: float) -> None:
        wall = self._monotonic()
        with self._lock:
            self._base_api += (wall - self._base_wall) * self._scale
            self._base_wall = wall
            self._scale = time_scale

    def wall_seconds(self, api_seconds: float) -> float:
        """How much wall time a span of API time takes at the current scale."""
        return api_seconds / self._scale


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def format_creation_time(epoch: float) -> str:
    """The upload answer's `creationDateTime`: seven fractional digits, no zone."""
    moment = _utc(epoch)
    ticks = round((epoch % 1) * 10_000_000) % 10_000_000
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ticks:07d}"


def format_utc_millis(epoch: float) -> str:
    """The HR filters' format, `YYYY-MM-DDTHH:MM:SS.sssZ`."""
    moment = _utc(epoch)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def format_issued_at(epoch: float) -> str:
    """Error bodies' `issuedAt`."""
    return format_utc_millis(epoch)
