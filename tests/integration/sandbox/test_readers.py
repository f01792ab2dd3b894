"""HR readers over HTTP: nextLink paging as given, filters, deleted records, scopes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox import ClientApp, SandboxServer
from tests.integration.sandbox.wire import (
    TIMEOUT,
    admin,
    api_get,
    api_headers,
    assert_youforce_error,
    get_token,
    upload_v11,
)
from tests.plugins.sandbox_fixtures import SandboxFactory


def follow(server: SandboxServer, token: str, url: str, key: str = "value") -> list[list[Any]]:
    pages: list[list[Any]] = []
    next_url: str | None = url
    while next_url is not None:
        response = requests.get(next_url, headers=api_headers(token), timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body[key])
        next_url = body.get("nextLink")
        assert len(pages) < 50
    return pages


def test_persons_span_several_pages_with_take(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    pages = follow(sandbox, token, f"{sandbox.url}/learning/v1.0/persons?take=100")
    assert [len(page) for page in pages] == [100, 100, 100]
    codes = [record["id"] for page in pages for record in page]
    assert len(set(codes)) == 300
    assert "191166" in codes


def test_next_link_is_absolute_and_keeps_take_and_filters(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    response = api_get(
        sandbox, token, "persons", take="10", changedAfter="2021-06-01T00:00:00.000Z"
    )
    link = response.json()["nextLink"]
    assert link.startswith(f"{sandbox.url}/learning/v1.0/persons?")
    query = parse_qs(urlsplit(link).query)
    assert query["take"] == ["10"]
    assert query["changedAfter"] == ["2021-06-01T00:00:00.000Z"]


def test_values_mode(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(records_key="values")
    token = get_token(server)
    body = api_get(server, token, "jobProfiles").json()
    assert "value" not in body
    assert len(body["values"]) == 10


def test_deleted_records(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    records = api_get(sandbox, token, "persons", take="1000").json()["value"]
    deleted = [record for record in records if record.get("isDeleted")]
    assert len(deleted) >= 3
    assert deleted[0] == {"id": deleted[0]["id"], "isDeleted": True, "shortName": deleted[0]["id"]}
    units = api_get(sandbox, token, "organizationUnits").json()["value"]
    assert {"id": "1099X", "isDeleted": True, "shortName": "1099X"} in units


def test_person_fields_and_change_timestamp(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    records = api_get(sandbox, token, "persons", take="1000").json()["value"]
    person = next(record for record in records if record.get("id") == "191166")
    for name in (
        "id", "personCode", "initials", "firstNames", "knownAs", "lastName", "lastNamePrefix",
        "birthDate", "gender", "emailAddresses", "phoneNumbers", "addresses", "lastModified",
    ):  # fmt: skip
        assert name in person
    assert {item["type"] for item in person["emailAddresses"]} == {"Business"}
    assert person["addresses"] == []


def test_private_contact_details_need_their_scope(sandbox_factory: SandboxFactory) -> None:
    scopes = ("Invitation_only", "Get_Basic", "Upload_documents", "GetPrivateContactDetails")
    server = sandbox_factory(clients=[ClientApp("sandbox-client", "sandbox-secret", scopes=scopes)])
    token = get_token(server)
    records = api_get(server, token, "persons", take="5").json()["value"]
    person = next(record for record in records if not record.get("isDeleted"))
    assert "Private" in {item["type"] for item in person["emailAddresses"]}
    assert person["addresses"]


def test_readers_need_get_basic(sandbox: SandboxServer) -> None:
    token = get_token(sandbox, scope="Upload_documents")
    assert_youforce_error(api_get(sandbox, token, "persons"), 403)


@pytest.mark.parametrize(
    ("path", "params", "field", "value"),
    [
        ("employments", {"personCode": "191166"}, "personCode", "191166"),
        ("employments", {"personId": "191166"}, "personId", "191166"),
        ("organizationUnits", {"shortName": "1010A"}, "shortName", "1010A"),
        ("jobProfiles", {"shortName": "DEV01"}, "shortName", "DEV01"),
        ("roleAssignments", {"shortName": "MGR"}, "shortName", "MGR"),
    ],
)
def test_filters(
    sandbox: SandboxServer, path: str, params: dict[str, str], field: str, value: str
) -> None:
    token = get_token(sandbox)
    records = api_get(sandbox, token, path, **params).json()["value"]
    assert records
    assert {record[field] for record in records} == {value}


def test_changed_window_filters(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    window = {
        "changedAfter": "2022-01-01T00:00:00.000Z",
        "changedUntil": "2022-12-31T23:59:59.999Z",
    }
    records = api_get(sandbox, token, "persons", take="1000", **window).json()["value"]
    live = [record for record in records if not record.get("isDeleted")]
    assert 0 < len(records) < 300
    assert all("2022-01-01" <= record["lastModified"] < "2023-01-01" for record in live)


def test_malformed_timestamp_is_400(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    response = api_get(sandbox, token, "persons", changedAfter="2022-01-01 00:00:00")
    assert "changedAfter" in assert_youforce_error(response, 400)["errors"]


def test_take_over_1000_is_400(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    assert_youforce_error(api_get(sandbox, token, "persons", take="1001"), 400)


def test_cost_allocation_by_id(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    response = requests.get(
        f"{sandbox.url}/learning/v1.0/costAllocations/191166%201%200",
        headers=api_headers(token),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert response.json()["personCode"] == "191166"
    missing = requests.get(
        f"{sandbox.url}/learning/v1.0/costAllocations/nope",
        headers=api_headers(token),
        timeout=TIMEOUT,
    )
    assert_youforce_error(missing, 404)


def test_deprecated_employees_reader_does_not_exist(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    assert_youforce_error(api_get(sandbox, token, "employees"), 404)


def seed(server: SandboxServer, **body: object) -> dict[str, Any]:
    response = requests.post(f"{server.url}/_sandbox/persons", json=body, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def person(code: str, *emails: tuple[str, str], last_name: str = "Jansen") -> dict[str, Any]:
    return {
        "personCode": code,
        "lastName": last_name,
        "emailAddresses": [{"type": kind, "address": address} for kind, address in emails],
    }


def changed_after(server: SandboxServer, token: str, since: str, take: str = "1000") -> list[Any]:
    url = f"{server.url}/learning/v1.0/persons?changedAfter={since}&take={take}"
    return [record for page in follow(server, token, url) for record in page]


JULY = "2024-07-01T00:00:00.000Z"


def test_seeded_changes_and_deletions_come_back_by_changed_after(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    seed(
        sandbox,
        tenant_id="4028868",
        changed_at="2024-07-01T08:00:00.000Z",
        persons=[
            person("555001", ("Business", "a.jansen@example.com")),
            person("555002", ("Business", "b.visser@example.com")),
        ],
    )
    seed(
        sandbox,
        tenant_id="4028868",
        changed_at="2024-07-02T08:00:00.000Z",
        persons=[person("555002", ("Business", "b.smit@example.com"), last_name="Smit")],
        deleted=["555001", "907624"],
    )
    everything = changed_after(sandbox, token, JULY)
    assert [record["id"] for record in everything] == ["555001", "555002", "907624"]
    assert everything[0] == {"id": "555001", "isDeleted": True, "shortName": "555001"}
    assert everything[2] == {"id": "907624", "isDeleted": True, "shortName": "907624"}
    changed = everything[1]
    assert changed["lastName"] == "Smit"
    assert changed["emailAddresses"] == [{"type": "Business", "address": "b.smit@example.com"}]
    assert changed["lastModified"] == "2024-07-02T08:00:00.000Z"
    assert [r["id"] for r in changed_after(sandbox, token, "2024-07-02T08:00:00.000Z")] == []
    later = changed_after(sandbox, token, "2024-07-01T08:00:00.000Z")
    assert len(later) == 3, "changedAfter is exclusive: the first batch's time is left out"


def test_a_seeded_person_takes_uploads_and_a_deleted_one_does_not(sandbox: SandboxServer) -> None:
    token = get_token(sandbox)
    seed(sandbox, tenant_id="4028868", persons=[person("555003")])
    assert upload_v11(sandbox, token, person="555003").status_code == 200
    seed(sandbox, tenant_id="4028868", deleted=["555003", "191166"])
    assert_youforce_error(upload_v11(sandbox, token, person="555003"), 404)
    assert_youforce_error(upload_v11(sandbox, token, person="191166"), 404)


def test_seeding_without_a_time_uses_the_api_clock(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(clock_frozen=True)
    token = get_token(server)
    now = admin(server, "clock")["api_time"]
    answer = seed(server, tenant_id="4028868", persons=[person("555004")])
    assert answer == {
        "tenant_id": "4028868",
        "changed_at": now,
        "seeded": ["555004"],
        "deleted": [],
    }
    (record,) = [r for r in changed_after(server, token, JULY) if r["id"] == "555004"]
    assert record["lastModified"] == now


def test_private_email_needs_its_scope(sandbox_factory: SandboxFactory) -> None:
    scopes = ("Invitation_only", "Get_Basic", "Upload_documents", "GetPrivateContactDetails")
    server = sandbox_factory(
        clients=[
            ClientApp("sandbox-client", "sandbox-secret", scopes=scopes),
            ClientApp("basic-client", "basic-secret", scopes=("Get_Basic",)),
        ]
    )
    emails = (("Business", "e.bos@example.com"), ("Private", "eva@example.net"))
    seed(server, tenant_id="4028868", changed_at=JULY, persons=[person("555005", *emails)])
    since = "2024-06-30T00:00:00.000Z"
    (full,) = [r for r in changed_after(server, get_token(server), since) if r["id"] == "555005"]
    assert {e["type"] for e in full["emailAddresses"]} == {"Business", "Private"}
    basic = get_token(server, client_id="basic-client", client_secret="basic-secret")
    (seen,) = [r for r in changed_after(server, basic, since) if r["id"] == "555005"]
    assert seen["emailAddresses"] == [{"type": "Business", "address": "e.bos@example.com"}]


def test_take_1000_pages_keep_their_size(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(tenants={"4028868": 2500, "4028869": 10})
    token = get_token(server)
    pages = follow(server, token, f"{server.url}/learning/v1.0/persons?take=1000")
    assert [len(page) for page in pages] == [1000, 1000, 500]
    first = api_get(server, token, "persons", take="1000").json()
    assert parse_qs(urlsplit(first["nextLink"]).query)["take"] == ["1000"]


@pytest.mark.parametrize(
    "body",
    [
        {"persons": [{"personCode": "1"}]},
        {"tenant_id": "9999999", "persons": [{"personCode": "1"}]},
        {"tenant_id": "4028868", "persons": [{"lastName": "no code"}]},
        {"tenant_id": "4028868", "persons": [{"personCode": "a/b"}]},
        {"tenant_id": "4028868", "persons": [{"personCode": "1", "emailAddresses": "x"}]},
        {"tenant_id": "4028868", "changed_at": "2024-07-01", "persons": []},
        {"tenant_id": "4028868", "deleted": [1]},
        {"tenant_id": "4028868", "surprise": True},
    ],
)
def test_a_bad_seed_is_400_and_changes_nothing(
    sandbox: SandboxServer, body: dict[str, object]
) -> None:
    token = get_token(sandbox)
    before = changed_after(sandbox, token, "2000-01-01T00:00:00.000Z")
    response = requests.post(f"{sandbox.url}/_sandbox/persons", json=body, timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.json()["message"]
    assert changed_after(sandbox, token, "2000-01-01T00:00:00.000Z") == before
