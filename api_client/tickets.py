"""A ticket's status, read from names or numbers, reduced to in progress, complete or failed.

The published examples name the status (`InProgress`, `Complete`); the Swagger declares four
unnamed integers. Both are accepted; numbers are translated by a configurable map (default
0 InProgress, 1 Complete, 2 Failed, 3 Rejected). Anything not known to mean "in progress" or
"complete", and any error message on a ticket that is not complete, means the document did
not arrive: better a visible failure than a ticket polled forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "DEFAULT_STATUS_NUMBER_MAP",
    "TicketState",
    "TicketStatus",
    "parse_status_number_map",
    "ticket_status_from_payload",
]

DEFAULT_STATUS_NUMBER_MAP: Mapping[int, str] = {
    0: "InProgress",
    1: "Complete",
    2: "Failed",
    3: "Rejected",
}

_IN_PROGRESS_NAMES = {"inprogress", "in_progress", "in progress", "in-progress", "pending"}
_COMPLETE_NAMES = {"complete", "completed"}


class TicketState(StrEnum):
    """What a ticket status means for the job that holds it."""

    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(frozen=True)
class TicketStatus:
    """A ticket's status as the API gave it (`api_value`, `name`) and what it means (`state`)."""

    state: TicketState
    api_value: str | int
    name: str
    error_messages: tuple[str, ...]

    @property
    def is_terminal(self) -> bool:
        """True when polling this ticket again cannot change the outcome."""
        return self.state is not TicketState.IN_PROGRESS

    @classmethod
    def from_api(
        cls,
        status: object,
        error_messages: object = None,
        number_map: Mapping[int, str] | None = None,
    ) -> TicketStatus:
        """Interpret a `status` value and its `errorMessages`; ValueError if the value is
        neither a name nor a number, or the messages are not a list."""
        mapping = DEFAULT_STATUS_NUMBER_MAP if number_map is None else number_map
        messages = _messages(error_messages)
        api_value: str | int
        if isinstance(status, bool):
            raise ValueError(f"status {status!r} is neither a name nor a number")
        if isinstance(status, int):
            api_value = status
            name = mapping.get(status, f"Unknown({status})")
        elif isinstance(status, str) and status.strip():
            api_value = status
            text = status.strip()
            if text.lstrip("-").isdigit():
                number = int(text)
                name = mapping.get(number, f"Unknown({number})")
            else:
                name = text
        else:
            raise ValueError(f"status {status!r} is neither a name nor a number")
        folded = name.casefold()
        if folded in _COMPLETE_NAMES:
            state = TicketState.COMPLETE
        elif folded in _IN_PROGRESS_NAMES and not messages:
            state = TicketState.IN_PROGRESS
        else:
            state = TicketState.FAILED
        return cls(state=state, api_value=api_value, name=name, error_messages=messages)


def _messages(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"errorMessages {value!r} is not a list")
    messages: list[str] = []
    for item in value:
        if isinstance(item, dict):
            text: Any = item.get("message") or item.get("Message") or item
            messages.append(str(text))
        elif item is not None and str(item).strip():
            messages.append(str(item))
    return tuple(messages)


def ticket_status_from_payload(
    payload: object, number_map: Mapping[int, str] | None = None
) -> TicketStatus:
    """A `TicketStatus` from a status (or upload) answer body; ValueError on a bad shape."""
    if not isinstance(payload, dict):
        raise ValueError("the status answer is not a JSON object")
    if "status" not in payload:
        raise ValueError("the status answer has no 'status'")
    return TicketStatus.from_api(payload["status"], payload.get("errorMessages"), number_map)


def parse_status_number_map(text: str | Mapping[int, str] | None) -> dict[int, str]:
    """The number-to-name map from configuration: `"0:InProgress,1:Complete,2:Failed"` (or
    `=` instead of `:`), a mapping, or None/empty for the default."""
    if text is None:
        return dict(DEFAULT_STATUS_NUMBER_MAP)
    items: list[tuple[object, object]]
    if isinstance(text, Mapping):
        items = list(text.items())
    else:
        if not text.strip():
            return dict(DEFAULT_STATUS_NUMBER_MAP)
        items = []
        for entry in text.split(","):
            if not entry.strip():
                continue
            separator = ":" if ":" in entry else "="
            number, found, name = entry.partition(separator)
            if not found:
                raise ValueError(f"status map entry {entry.strip()!r} is not NUMBER:NAME")
            items.append((number.strip(), name.strip()))
    result: dict[int, str] = {}
    for raw_number, raw_name in items:
        try:
            key = int(str(raw_number))
        except ValueError:
            raise ValueError(f"status map key {raw_number!r} is not an integer") from None
        if not isinstance(raw_name, str) or not raw_name.strip():
            raise ValueError(f"status map entry {raw_number!r} has no name")
        if key in result:
            raise ValueError(f"status map has {key} twice")
        result[key] = raw_name.strip()
    if not result:
        raise ValueError("status map is empty")
    return result
