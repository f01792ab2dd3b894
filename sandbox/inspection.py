"""What the sandbox saw: a capped request log and counters, for tests and benchmarks.

Nothing here ever holds a secret: Authorization values are replaced by markers before an
entry is stored, form fields named like secrets are masked, and upload bodies are kept
only as sizes and SHA-256 digests.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

__all__ = ["RequestLog", "Stats"]

Entry = dict[str, Any]


class RequestLog:
    """The last N requests in arrival order; entries are completed as handling goes on."""

    def __init__(self, capacity: int) -> None:
        self._lock = threading.Lock()
        self._entries: deque[Entry] = deque(maxlen=capacity)
        self._next_seq = 1

    def open(self, entry: Entry) -> Entry:
        """Record a request at arrival; returns the live entry to complete later."""
        with self._lock:
            entry["seq"] = self._next_seq
            self._next_seq += 1
            self._entries.append(entry)
            return entry

    def update(self, entry: Entry, **fields: Any) -> None:
        with self._lock:
            entry.update(fields)

    def snapshot(self, since: int = 0) -> list[Entry]:
        with self._lock:
            return [dict(entry) for entry in self._entries if entry["seq"] > since]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class Stats:
    """Counters for the whole server; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset_locked()

    def _reset_locked(self) -> None:
        self.token_requests = 0
        self.tokens_issued = 0
        self.calls_by_endpoint: Counter[str] = Counter()
        self.responses_by_status: Counter[str] = Counter()
        self.rate_limited: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.uploads_accepted = 0
        self.in_flight = 0
        self.max_concurrency = 0

    def reset(self) -> None:
        with self._lock:
            in_flight = self.in_flight
            self._reset_locked()
            self.in_flight = in_flight

    def enter(self) -> None:
        """An API call started; tracks the highest number in flight at once."""
        with self._lock:
            self.in_flight += 1
            self.max_concurrency = max(self.max_concurrency, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def count(self, name: str, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                setattr(self, name, getattr(self, name) + 1)
            else:
                counter: Counter[str] = getattr(self, name)
                counter[key] += 1

    def snapshot(self, extra: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {
                "token_requests": self.token_requests,
                "tokens_issued": self.tokens_issued,
                "calls_by_endpoint": dict(self.calls_by_endpoint),
                "responses_by_status": dict(self.responses_by_status),
                "rate_limited": {
                    "parallel": self.rate_limited["parallel"],
                    "spike": self.rate_limited["spike"],
                    "daily": self.rate_limited["daily"],
                    "token_budget": self.rate_limited["token_budget"],
                },
                "faults": {
                    "dropped": self.faults["dropped"],
                    "server_errors": self.faults["server_errors"],
                    "revocations": self.faults["revocations"],
                    "latency_added": self.faults["latency_added"],
                },
                "uploads_accepted": self.uploads_accepted,
                "in_flight": self.in_flight,
                "max_concurrency": self.max_concurrency,
                **extra,
            }
