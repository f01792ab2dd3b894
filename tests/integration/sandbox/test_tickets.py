"""Ticket status over HTTP, with time scale: to Complete, to failures, names and numbers."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox import SandboxServer
from tests.integration.sandbox.wire import (
    OTHER_TENANT,
    TIMEOUT,
    admin,
    advance,
    api_headers,
    assert_youforce_error,
    get_token,
    raw_request,
    status,
    upload_v11,
)
from tests.plugins.sandbox_fixtures import SandboxFactory


def upload(server: SandboxServer, token: str, person: str = "191166") -> str:
    response = upload_v11(server, token, person=person)
    assert response.status_code == 200, response.text
    ticket_id: str = response.json()["ticketId"]
    return ticket_id


def frozen(factory: SandboxFactory, **overrides: Any) -> SandboxServer:
    """A sandbox whose API time moves only when the test advances it."""
    return factory(clock_frozen=True, **overrides)


def test_ticket_is_in_progress_then_complete(sandbox_factory: SandboxFactory) -> None:
    server = frozen(sandbox_factory, ticket_delay={"kind": "fixed", "seconds": 30.0})
    token = get_token(server)
    ticket_id = upload(server, token)
    assert status(server, token, ticket_id).json() == {"status": "InProgress", "errorMessages": []}
    advance(server, 29.999)
    assert status(server, token, ticket_id).json() == {"status": "InProgress", "errorMessages": []}
    advance(server, 0.001)
    assert status(server, token, ticket_id).json() == {"status": "Complete", "errorMessages": []}


def test_locked_personnel_file_fails(sandbox_factory: SandboxFactory) -> None:
    server = frozen(sandbox_factory, ticket_delay={"kind": "fixed", "seconds": 5.0})
    token = get_token(server)
    ticket_id = upload(server, token, person="900001")
    assert status(server, token, ticket_id).json()["status"] == "InProgress"
    advance(server, 5.0)
    body = status(server, token, ticket_id).json()
    assert body == {"status": "Failed", "errorMessages": ["Personnel file is locked"]}


def test_stalled_ticket_stays_in_progress_for_six_api_hours(
    sandbox_factory: SandboxFactory,
) -> None:
    # The token must outlive the six hours the test moves through.
    server = frozen(sandbox_factory, token_lifetime_s=30 * 86_400.0)
    token = get_token(server)
    ticket_id = upload(server, token, person="900002")
    advance(server, 6 * 3600 - 1)
    assert status(server, token, ticket_id).json()["status"] == "InProgress"
    advance(server, 1)
    body = status(server, token, ticket_id).json()
    assert body["status"] == "Rejected"
    assert body["errorMessages"]


def test_random_failure_rate(sandbox_factory: SandboxFactory) -> None:
    server = frozen(sandbox_factory, ticket_failure_rate=1.0)
    token = get_token(server)
    ticket_id = upload(server, token)
    advance(server, 1.0)
    body = status(server, token, ticket_id).json()
    assert body["status"] == "Failed"
    assert body["errorMessages"]


def test_numbers_format(sandbox_factory: SandboxFactory) -> None:
    server = frozen(
        sandbox_factory, status_format="numbers", ticket_delay={"kind": "fixed", "seconds": 20.0}
    )
    token = get_token(server)
    answer = upload_v11(server, token).json()
    failing = upload(server, token, person="900001")
    assert answer["status"] == 0
    assert status(server, token, answer["ticketId"]).json()["status"] == 0
    advance(server, 20.0)
    assert status(server, token, answer["ticketId"]).json()["status"] == 1
    assert status(server, token, failing).json()["status"] == 2


def test_frozen_clock_stands_still_between_requests(sandbox_factory: SandboxFactory) -> None:
    server = frozen(sandbox_factory)
    first = admin(server, "clock")
    get_token(server)
    assert admin(server, "clock")["api_seconds"] == first["api_seconds"]
    assert first["frozen"] is True
    assert advance(server, 90.5) == first["api_seconds"] + 90.5


@pytest.mark.parametrize("body", [{"seconds": -1}, {"seconds": "5"}, {"seconds": True}, {}])
def test_advance_refuses_what_is_not_a_forward_step(
    sandbox_factory: SandboxFactory, body: dict[str, object]
) -> None:
    server = frozen(sandbox_factory)
    before = admin(server, "clock")["api_seconds"]
    response = requests.post(f"{server.url}/_sandbox/clock/advance", json=body, timeout=TIMEOUT)
    assert response.status_code == 400
    assert admin(server, "clock")["api_seconds"] == before


def test_format_can_switch_at_runtime(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    ticket_id = upload(sandbox, token)
    admin(sandbox, "config", {"status_format": "numbers"})
    assert status(sandbox, token, ticket_id).json()["status"] == 0


def test_another_tenants_ticket_is_404(sandbox: SandboxServer) -> None:
    ticket_id = upload(sandbox, get_token(sandbox))
    other = get_token(sandbox, tenant=OTHER_TENANT)
    assert_youforce_error(status(sandbox, other, ticket_id, tenant=OTHER_TENANT), 404)


def test_unknown_and_malformed_ticket_ids(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    assert_youforce_error(status(sandbox, token, "7ca486f6-c730-4d50-a2ec-31a3a1373366"), 404)
    assert_youforce_error(status(sandbox, token, "not-a-guid"), 400)


def test_ticket_listing_shows_due_times(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(ticket_delay={"kind": "fixed", "seconds": 3600.0})
    token = get_token(server)
    ticket_id = upload(server, token, person="900001")
    (ticket,) = requests.get(f"{server.url}/_sandbox/tickets", timeout=TIMEOUT).json()["tickets"]
    assert ticket["ticket_id"] == ticket_id
    assert (ticket["tenant_id"], ticket["person_code"]) == ("4028868", "900001")
    assert (ticket["state"], ticket["outcome"]) == ("InProgress", "Failed")
    assert ticket["due_at"] > ticket["created_at"]


@pytest.mark.parametrize("position", [0, 9, 35])
def test_a_percent_encoded_ticket_id_is_not_decoded(sandbox: SandboxServer, position: int) -> None:
    token = get_token(sandbox)
    ticket_id = upload(sandbox, token)
    encoded = f"{ticket_id[:position]}%{ord(ticket_id[position]):02X}{ticket_id[position + 1 :]}"
    answer = raw_request(
        sandbox, "GET", f"/learning/v1.0/employees/documents/{encoded}/status", api_headers(token)
    )
    assert answer.status_code == 400
    assert "ticketId" in answer.json()["errors"]
    assert status(sandbox, token, ticket_id).status_code == 200
