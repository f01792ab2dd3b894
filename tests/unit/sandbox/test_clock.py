"""The manual clock: frozen API time moves only when advanced, and never backwards."""

from __future__ import annotations

import json

import pytest

from sandbox.clock import ApiClock
from sandbox.config import LimitConfig, SandboxConfig
from sandbox.faults import FaultPlan
from sandbox.service import ApiRequest, SandboxService


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_frozen_clock_ignores_wall_time_and_moves_by_advance() -> None:
    wall = FakeMonotonic()
    clock = ApiClock(60.0, monotonic=wall, start_epoch=1_000.0, frozen=True)
    wall.now += 50.0
    assert clock.now() == 1_000.0
    assert clock.advance(30.0) == 1_030.0
    assert clock.now() == 1_030.0


def test_thawing_runs_on_from_the_frozen_time() -> None:
    wall = FakeMonotonic()
    clock = ApiClock(2.0, monotonic=wall, start_epoch=0.0)
    wall.now += 5.0
    clock.set_frozen(True)
    assert clock.now() == 10.0
    wall.now += 5.0
    assert clock.now() == 10.0
    clock.set_frozen(False)
    wall.now += 1.0
    assert clock.now() == 12.0


def test_advance_adds_to_a_running_clock_too() -> None:
    wall = FakeMonotonic()
    clock = ApiClock(1.0, monotonic=wall, start_epoch=0.0)
    wall.now += 1.0
    assert clock.advance(3600.0) == 3601.0
    wall.now += 1.0
    assert clock.now() == 3602.0


@pytest.mark.parametrize("step", [-0.001, float("nan")])
def test_the_clock_never_goes_back(step: float) -> None:
    clock = ApiClock(frozen=True, start_epoch=5.0)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(step)
    assert clock.now() == 5.0


def test_patching_clock_frozen_freezes_the_running_service() -> None:
    service = SandboxService(SandboxConfig())
    service.patch_config({"clock_frozen": True})
    assert service.clock.frozen
    assert service.clock.now() == service.clock.now()


def test_added_latency_sleeps_for_the_configured_time() -> None:
    config = SandboxConfig(limits=LimitConfig(max_parallel=None, spike_per_minute=None))
    service = SandboxService(config)
    slept: list[float] = []
    service._sleep = slept.append
    now = service.clock.now()
    token = service.tokens.issue("sandbox-client", "4028868", ("Get_Basic",), now, 60)
    headers = [("Authorization", f"Bearer {token.value}"), ("X-Raet-Tenant-Id", "4028868")]
    path = "/learning/v1.0/jobProfiles"
    entry = service.open_entry("GET", path, "", headers)
    request = ApiRequest("GET", path, "", headers, b"", service.clock.now(), entry)
    response = service.handle_api(request, FaultPlan(latency_s=0.75))
    assert response.status == 200
    assert slept == [0.75]
    assert entry["added_latency_s"] == 0.75


def test_admin_advance_answers_the_new_api_time() -> None:
    service = SandboxService(SandboxConfig(clock_frozen=True))
    before = service.clock.now()
    answer = service.admin("POST", "/_sandbox/clock/advance", "", b'{"seconds": 7.5}')
    assert answer.status == 200
    assert json.loads(answer.body)["api_seconds"] == before + 7.5
