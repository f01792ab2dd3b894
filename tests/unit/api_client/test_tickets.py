"""Ticket status from names, numbers, a configured map, unknown values and error messages."""

from __future__ import annotations

import pytest

from api_client import TicketState, TicketStatus, parse_status_number_map
from api_client.tickets import ticket_status_from_payload

IN, OK, BAD = TicketState.IN_PROGRESS, TicketState.COMPLETE, TicketState.FAILED


@pytest.mark.parametrize(
    ("status", "messages", "state", "name"),
    [
        ("InProgress", [], IN, "InProgress"),
        ("Complete", [], OK, "Complete"),
        ("complete", None, OK, "complete"),
        ("Failed", [], BAD, "Failed"),
        ("Rejected", ["too big"], BAD, "Rejected"),
        ("Exploded", [], BAD, "Exploded"),
        ("InProgress", ["retrying: file system down"], BAD, "InProgress"),
        ("Complete", ["note"], OK, "Complete"),
        (0, [], IN, "InProgress"),
        (1, [], OK, "Complete"),
        (2, [], BAD, "Failed"),
        (3, ["Person not found"], BAD, "Rejected"),
        (7, [], BAD, "Unknown(7)"),
        ("1", [], OK, "Complete"),
    ],
)
def test_status_values(
    status: str | int, messages: list[str] | None, state: TicketState, name: str
) -> None:
    result = TicketStatus.from_api(status, messages)
    assert result.state is state
    assert result.name == name
    assert result.api_value == status
    assert result.error_messages == tuple(messages or ())
    assert result.is_terminal is (state is not IN)


def test_custom_number_map() -> None:
    mapping = parse_status_number_map("0:Complete, 1:InProgress,2=Failed")
    assert TicketStatus.from_api(0, [], mapping).state is OK
    assert TicketStatus.from_api(1, [], mapping).state is IN
    assert TicketStatus.from_api(3, [], mapping).state is BAD


def test_message_objects_are_flattened() -> None:
    result = TicketStatus.from_api("Failed", [{"message": "Not a PDF"}, "", None])
    assert result.error_messages == ("Not a PDF",)


@pytest.mark.parametrize("status", [None, True, "", 1.5, ["Complete"]])
def test_unreadable_status_is_refused(status: object) -> None:
    with pytest.raises(ValueError, match="neither a name nor a number"):
        TicketStatus.from_api(status, [])


def test_payload_shapes() -> None:
    assert ticket_status_from_payload({"status": "Complete", "errorMessages": []}).state is OK
    with pytest.raises(ValueError, match="no 'status'"):
        ticket_status_from_payload({"errorMessages": []})
    with pytest.raises(ValueError, match="not a list"):
        ticket_status_from_payload({"status": "Failed", "errorMessages": "boom"})
    with pytest.raises(ValueError, match="not a JSON object"):
        ticket_status_from_payload(["Complete"])


def test_parse_status_number_map() -> None:
    default = {0: "InProgress", 1: "Complete", 2: "Failed", 3: "Rejected"}
    assert parse_status_number_map(None) == default
    assert parse_status_number_map("") == default
    assert parse_status_number_map("0:InProgress,1:Complete,2:Failed,3:Rejected") == default
    assert parse_status_number_map({5: "Complete"}) == {5: "Complete"}
    for bad in ("x:Complete", "1", "1:", "1:A,1:B", " , "):
        with pytest.raises(ValueError, match="status map"):
            parse_status_number_map(bad)
