"""HR readers over HTTP: nextLink paging as given, filters, deleted records, scopes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox import ClientApp, SandboxServer
from tests.integration.sandbox.wire import (
    TIMEOUT,
    api_get,
    api_headers,
    assert_youforce_error,
    get_token,
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
