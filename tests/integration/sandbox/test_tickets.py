"""Ticket status over HTTP, with time scale: to Complete, to failures, names and numbers."""

from __future__ import annotations

import time

import requests

from sandbox import SandboxServer
from tests.integration.sandbox.wire import (
    OTHER_TENANT,
    TIMEOUT,
    admin,
    assert_youforce_error,
    get_token,
    status,
    upload_v11,
)
from tests.plugins.sandbox_fixtures import SandboxFactory


def upload(server: SandboxServer, token: str, person: str = "191166") -> str:
    response = upload_v11(server, token, person=person)
    assert response.status_code == 200, response.text
    ticket_id: str = response.json()["ticketId"]
    return ticket_id


def wait_for(
    server: SandboxServer, token: str, ticket_id: str, wanted: object
) -> dict[str, object]:
    deadline = time.monotonic() + 5
    while True:
        body: dict[str, object] = status(server, token, ticket_id).json()
        if body["status"] == wanted or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


def test_ticket_is_in_progress_then_complete(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(time_scale=100.0, ticket_delay={"kind": "fixed", "seconds": 30.0})
    token = get_token(server)
    ticket_id = upload(server, token)
    assert status(server, token, ticket_id).json() == {"status": "InProgress", "errorMessages": []}
    time.sleep(0.32)
    assert status(server, token, ticket_id).json() == {"status": "Complete", "errorMessages": []}


def test_locked_personnel_file_fails(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(time_scale=100.0, ticket_delay={"kind": "fixed", "seconds": 5.0})
    token = get_token(server)
    ticket_id = upload(server, token, person="900001")
    body = wait_for(server, token, ticket_id, "Failed")
    assert body == {"status": "Failed", "errorMessages": ["Personnel file is locked"]}


def test_stalled_ticket_stays_in_progress_for_six_api_hours(
    sandbox_factory: SandboxFactory,
) -> None:
    # 6 API hours = 0.6 s; the token must outlive them (an hour would be 0.1 s here).
    server = sandbox_factory(time_scale=36_000.0, token_lifetime_s=30 * 86_400.0)
    token = get_token(server)
    ticket_id = upload(server, token, person="900002")
    time.sleep(0.3)
    assert status(server, token, ticket_id).json()["status"] == "InProgress"
    body = wait_for(server, token, ticket_id, "Rejected")
    assert body["status"] == "Rejected"
    assert body["errorMessages"]


def test_random_failure_rate(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(time_scale=1000.0, ticket_failure_rate=1.0)
    token = get_token(server)
    ticket_id = upload(server, token)
    body = wait_for(server, token, ticket_id, "Failed")
    assert body["status"] == "Failed"
    assert body["errorMessages"]


def test_numbers_format(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(
        time_scale=100.0, status_format="numbers", ticket_delay={"kind": "fixed", "seconds": 20.0}
    )
    token = get_token(server)
    answer = upload_v11(server, token).json()
    assert answer["status"] == 0
    assert status(server, token, answer["ticketId"]).json()["status"] == 0
    assert wait_for(server, token, answer["ticketId"], 1)["status"] == 1
    failing = upload(server, token, person="900001")
    assert wait_for(server, token, failing, 2)["status"] == 2


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
