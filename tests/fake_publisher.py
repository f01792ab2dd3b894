"""One fake `messaging.JobPublisher` for every unit test: records what was sent, refuses
like a dead broker when told to, and can hand each message to a worker at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from messaging import PublishError

__all__ = ["FakePublisher"]


@dataclass
class FakePublisher:
    """Records (task, job id). Refuses every call while `down` is set, the first
    `failures` calls, or every call after the first `fail_after` accepted ones. With
    `deliver`, an accepted message is handed to it (kind, job id) before the call returns:
    a broker that pushes, and a worker that runs the step before the sender goes on."""

    down: bool = False
    failures: int = 0
    fail_after: int | None = None
    sent: list[tuple[str, str]] = field(default_factory=list)
    refused: int = 0
    deliver: Callable[[str, str], object] | None = None

    def _send(self, kind: str, job_id: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            self.refused += 1
            raise PublishError(f"broker down (fake): {kind} {job_id}")
        if self.down or (self.fail_after is not None and len(self.sent) >= self.fail_after):
            self.refused += 1
            raise PublishError(f"broker down (fake): {kind} {job_id}")
        self.sent.append((kind, job_id))
        if self.deliver is not None:
            self.deliver(kind, job_id)

    def publish_upload(self, job_id: str) -> None:
        self._send("upload", job_id)

    def publish_poll(self, job_id: str) -> None:
        self._send("poll", job_id)

    @property
    def calls(self) -> int:
        """Every call, accepted or refused."""
        return len(self.sent) + self.refused

    @property
    def published(self) -> list[str]:
        """The job ids of the uploads the broker took, in order."""
        return self.of("upload")

    def of(self, kind: str) -> list[str]:
        """The job ids of the accepted messages of one kind, in order."""
        return [job_id for sent_kind, job_id in self.sent if sent_kind == kind]

    def clear(self) -> None:
        self.sent.clear()
