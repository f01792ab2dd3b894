"""The job state machine: the one place that knows which state may follow which.

unmatched ──> queued ──> uploading ──> polling ──> complete
    │           ▲  │        │  │          │ ├────> failed
    │           │  │        │  │          │ └────> expired
    │           │  └────────┼──┼──> failed (refused before upload)
    │           └───────────┘  └──> failed (permanent API error)
    └──> failed              (transient error or lost worker: back to queued)
failed, expired ──> queued   (`yfdocs retry`)
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = [
    "ALLOWED_TRANSITIONS",
    "TERMINAL_STATES",
    "IllegalTransition",
    "JobState",
    "Priority",
    "check_transition",
]


class JobState(StrEnum):
    """Where an upload job stands. The values are a public interface (`--state`, `--json`)."""

    QUEUED = "queued"
    UPLOADING = "uploading"
    POLLING = "polling"
    COMPLETE = "complete"
    FAILED = "failed"
    EXPIRED = "expired"
    UNMATCHED = "unmatched"


class Priority(IntEnum):
    """Lower runs sooner: a fresh completion event goes before a historic backfill."""

    LIVE = 0
    BACKFILL = 1


TERMINAL_STATES = frozenset({JobState.COMPLETE, JobState.FAILED, JobState.EXPIRED})

ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.UNMATCHED: frozenset({JobState.QUEUED, JobState.FAILED}),
    JobState.QUEUED: frozenset({JobState.UPLOADING, JobState.FAILED}),
    JobState.UPLOADING: frozenset({JobState.POLLING, JobState.QUEUED, JobState.FAILED}),
    JobState.POLLING: frozenset({JobState.COMPLETE, JobState.FAILED, JobState.EXPIRED}),
    JobState.COMPLETE: frozenset(),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.EXPIRED: frozenset({JobState.QUEUED}),
}


class IllegalTransition(Exception):
    """A change of state that the state machine does not allow: a bug or a lost race."""

    def __init__(self, job_id: str, from_state: JobState, to_state: JobState) -> None:
        super().__init__(f"job {job_id}: {from_state.value} -> {to_state.value} is not allowed")
        self.job_id = job_id
        self.from_state = from_state
        self.to_state = to_state


def check_transition(job_id: str, from_state: JobState, to_state: JobState) -> None:
    """Raise `IllegalTransition` unless `from_state -> to_state` is allowed."""
    if to_state not in ALLOWED_TRANSITIONS[from_state]:
        raise IllegalTransition(job_id, from_state, to_state)
