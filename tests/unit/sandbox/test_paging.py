"""HR readers without sockets: filters, take bounds, nextLink cursors, deleted records."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox.config import LimitConfig, SandboxConfig
from sandbox.faults import FaultPlan
from sandbox.hrdata import build_tenant, parse_filter_timestamp
from sandbox.service import ApiRequest, SandboxService


@pytest.fixture
def service() -> SandboxService:
    config = SandboxConfig(
        limits=LimitConfig(max_parallel=None, spike_per_minute=None, daily_quota=None)
    )
    service = SandboxService(config)
    service.base_url = "http://127.0.0.1:9"
    return service


def get(service: SandboxService, path_and_query: str) -> tuple[int, dict[str, Any]]:
    token = service.tokens.issue(
        "sandbox-client", "4028868", ("Get_Basic",), service.clock.now(), 3600
    )
    path, _, query = path_and_query.partition("?")
    headers = [("Authorization", f"Bearer {token.value}"), ("X-Raet-Tenant-Id", "4028868")]
    request = ApiRequest(
        "GET", path, query, headers, b"", service.clock.now(),
        service.open_entry("GET", path, query, headers),
    )  # fmt: skip
    response = service.handle_api(request, FaultPlan())
    return response.status, json.loads(response.body)


def follow(service: SandboxService, first: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    link: str | None = first
    pages = 0
    while link:
        split = urlsplit(link)
        status, body = get(service, split.path + ("?" + split.query if split.query else ""))
        assert status == 200
        records.extend(body["value"])
        link = body.get("nextLink")
        pages += 1
        assert pages < 100
    return records


def test_paging_with_take_visits_every_person_once(service: SandboxService) -> None:
    status, first = get(service, "/learning/v1.0/persons?take=70")
    assert status == 200
    assert len(first["value"]) == 70
    next_query = parse_qs(urlsplit(first["nextLink"]).query)
    assert next_query["take"] == ["70"]
    assert first["nextLink"].startswith("http://127.0.0.1:9/learning/v1.0/persons?")
    everyone = follow(service, "/learning/v1.0/persons?take=70")
    assert len(everyone) == 300
    assert len({record["id"] for record in everyone}) == 300
    assert any(record["id"] == "191166" for record in everyone)


def test_last_page_has_no_next_link(service: SandboxService) -> None:
    _status, body = get(service, "/learning/v1.0/persons?take=1000")
    assert len(body["value"]) == 300
    assert "nextLink" not in body


def test_default_take_is_500() -> None:
    service = SandboxService(SandboxConfig(tenants={"4028868": 700}))
    _status, body = get(service, "/learning/v1.0/persons")
    assert len(body["value"]) == 500
    assert "nextLink" in body
    assert parse_qs(urlsplit(body["nextLink"]).query)["take"] == ["500"]


@pytest.mark.parametrize("take", ["0", "1001", "-1", "ten", "5.0"])
def test_take_out_of_bounds_is_400(service: SandboxService, take: str) -> None:
    status, body = get(service, f"/learning/v1.0/persons?take={take}")
    assert status == 400
    assert "take" in body["errors"]


def test_filters_survive_in_next_link(service: SandboxService) -> None:
    query = "changedAfter=2022-01-01T00:00:00.000Z&changedUntil=2023-12-31T23:59:59.999Z&take=25"
    everything = follow(service, f"/learning/v1.0/persons?{query}")
    _status, first = get(service, f"/learning/v1.0/persons?{query}")
    kept = parse_qs(urlsplit(first["nextLink"]).query)
    assert kept["changedAfter"] == ["2022-01-01T00:00:00.000Z"]
    assert kept["changedUntil"] == ["2023-12-31T23:59:59.999Z"]
    low = parse_filter_timestamp("2022-01-01T00:00:00.000Z")
    high = parse_filter_timestamp("2023-12-31T23:59:59.999Z")
    assert low is not None
    assert high is not None
    tenant = build_tenant("4028868", 300, 1234)
    expected = {r.key for r in tenant.resources["persons"] if low < r.changed_at <= high}
    assert {record["id"] for record in everything} == expected
    assert 0 < len(expected) < 300


def test_deleted_records_have_the_short_shape(service: SandboxService) -> None:
    records = follow(service, "/learning/v1.0/persons?take=1000")
    deleted = [record for record in records if record.get("isDeleted")]
    assert deleted
    for record in deleted:
        assert record == {"id": record["id"], "isDeleted": True, "shortName": record["id"]}


@pytest.mark.parametrize(
    "value",
    ["2022-01-01", "2022-01-01T00:00:00Z", "2022-01-01T00:00:00.000", "2022-13-01T00:00:00.000Z"],
)
def test_malformed_changed_after_is_400(service: SandboxService, value: str) -> None:
    status, body = get(service, f"/learning/v1.0/persons?changedAfter={value}")
    assert status == 400
    assert "changedAfter" in body["errors"]


def test_employments_filter_by_person_code(service: SandboxService) -> None:
    _status, body = get(service, "/learning/v1.0/employments?personCode=191166")
    assert body["value"]
    assert {record["personCode"] for record in body["value"]} == {"191166"}


def test_same_seed_same_data() -> None:
    first = build_tenant("4028868", 50, 9).resources["persons"]
    again = build_tenant("4028868", 50, 9).resources["persons"]
    other = build_tenant("4028868", 50, 10).resources["persons"]
    assert [r.body for r in first] == [r.body for r in again]
    assert [r.body for r in first] != [r.body for r in other]
