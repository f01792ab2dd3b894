"""API time: wall time sped up by `time_scale`, or a manual clock that moves only when told.

A frozen clock (`clock_frozen`) stands still between requests and moves only through
`advance` (`POST /_sandbox/clock/advance`), so a test can cross a ticket delay, a token
lifetime or a spike-arrest interval exactly, however loaded the machine is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["ApiClock", "format_creation_time", "format_issued_at", "format_utc_millis"]


class ApiClock:
    """Maps a monotonic wall clock onto API time (epoch seconds) at a changeable rate.

    Changing the scale, freezing or thawing rebases the clock, and `advance` only adds, so
    API time never jumps back or runs backwards.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        start_epoch: float | None = None,
        frozen: bool = False,
    ) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._scale = time_scale
        self._frozen = frozen
        self._base_wall = monotonic()
        self._base_api = time.time() if start_epoch is None else start_epoch

    @property
    def time_scale(self) -> float:
        return self._scale

    @property
    def frozen(self) -> bool:
        return self._frozen

    def _now_locked(self, wall: float) -> float:
        if self._frozen:
            return self._base_api
        return self._base_api + (wall - self._base_wall) * self._scale

    def now(self) -> float:
        """API time in epoch seconds."""
        wall = self._monotonic()
        with self._lock:
            return self._now_locked(wall)

    def set_scale(self, time_scale: float) -> None:
        wall = self._monotonic()
        with self._lock:
            self._base_api = self._now_locked(wall)
            self._base_wall = wall
            self._scale = time_scale

    def set_frozen(self, frozen: bool) -> None:
        """Stop API time where it is, or let it run on from there."""
        wall = self._monotonic()
        with self._lock:
            self._base_api = self._now_locked(wall)
            self._base_wall = wall
            self._frozen = frozen

    def advance(self, api_seconds: float) -> float:
        """Move API time forward by `api_seconds` (never back); returns the new API time."""
        if not api_seconds >= 0:
            raise ValueError(f"the clock only moves forward, not by {api_seconds!r} s")
        wall = self._monotonic()
        with self._lock:
            self._base_api = self._now_locked(wall) + api_seconds
            self._base_wall = wall
            return self._base_api

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
