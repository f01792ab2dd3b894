"""The state machine: every allowed step passes, everything else raises."""

from __future__ import annotations

import itertools

import pytest

from models import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATES,
    IllegalTransition,
    JobState,
    Priority,
    check_transition,
)

ALLOWED = [(a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in sorted(targets)]
ILLEGAL = [
    (a, b) for a, b in itertools.product(JobState, JobState) if b not in ALLOWED_TRANSITIONS[a]
]


def test_every_state_has_a_row() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(JobState)


@pytest.mark.parametrize(("from_state", "to_state"), ALLOWED)
def test_allowed_transition_passes(from_state: JobState, to_state: JobState) -> None:
    check_transition("job-1", from_state, to_state)


@pytest.mark.parametrize(("from_state", "to_state"), ILLEGAL)
def test_illegal_transition_raises(from_state: JobState, to_state: JobState) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition("job-1", from_state, to_state)
    assert info.value.from_state is from_state
    assert info.value.to_state is to_state
    assert f"{from_state.value} -> {to_state.value}" in str(info.value)


@pytest.mark.parametrize(
    ("from_state", "to_state"),
    [
        (JobState.COMPLETE, JobState.QUEUED),
        (JobState.QUEUED, JobState.COMPLETE),
        (JobState.QUEUED, JobState.POLLING),
        (JobState.POLLING, JobState.UPLOADING),
        (JobState.EXPIRED, JobState.COMPLETE),
        (JobState.FAILED, JobState.FAILED),
    ],
)
def test_known_wrong_steps_are_illegal(from_state: JobState, to_state: JobState) -> None:
    with pytest.raises(IllegalTransition):
        check_transition("job-1", from_state, to_state)


def test_complete_is_final_and_terminal_states_are_three() -> None:
    assert ALLOWED_TRANSITIONS[JobState.COMPLETE] == frozenset()
    assert {JobState.COMPLETE, JobState.FAILED, JobState.EXPIRED} == TERMINAL_STATES


def test_live_runs_before_backfill() -> None:
    assert Priority.LIVE < Priority.BACKFILL
    assert sorted([Priority.BACKFILL, Priority.LIVE]) == [Priority.LIVE, Priority.BACKFILL]
