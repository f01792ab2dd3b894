"""Ticket progression in scaled API time, seeded fates and the delay distributions."""

from __future__ import annotations

import random
import statistics

import pytest

from sandbox.clock import ApiClock, format_creation_time
from sandbox.config import DelayDistribution, SandboxConfig
from sandbox.tickets import LOCKED_MESSAGE, Ticket, TicketStore, draw_delay


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def create(store: TicketStore, config: SandboxConfig, person: str, now: float) -> Ticket:
    return store.create(
        tenant_id="4028868",
        person_code=person,
        document_type="diploma",
        api_version="v1.1",
        description="d",
        size=10,
        now=now,
        config=config,
    )


def test_clock_runs_time_scale_times_faster_and_rebases_on_change() -> None:
    wall = FakeMonotonic()
    clock = ApiClock(60.0, monotonic=wall, start_epoch=1_000_000.0)
    wall.now += 2.0
    assert clock.now() == pytest.approx(1_000_120.0)
    clock.set_scale(1.0)
    wall.now += 2.0
    assert clock.now() == pytest.approx(1_000_122.0)
    assert clock.wall_seconds(6 * 3600) == pytest.approx(6 * 3600)


def test_ticket_completes_after_its_delay_in_api_time() -> None:
    wall = FakeMonotonic()
    clock = ApiClock(3600.0, monotonic=wall, start_epoch=0.0)
    config = SandboxConfig(ticket_delay=DelayDistribution(kind="fixed", seconds=1800.0))
    store = TicketStore(seed=1)
    ticket = store.create(
        tenant_id="4028868",
        person_code="191166",
        document_type="diploma",
        api_version="v1.1",
        description="d",
        size=1,
        now=clock.now(),
        config=config,
    )
    wall.now += 0.49  # 1764 API seconds
    assert ticket.status_at(clock.now()) == ("InProgress", [])
    wall.now += 0.02
    assert ticket.status_at(clock.now()) == ("Complete", [])


def test_failing_person_always_fails_with_locked_file_message() -> None:
    config = SandboxConfig(ticket_delay=DelayDistribution(kind="fixed", seconds=5.0))
    store = TicketStore(seed=1)
    ticket = store.create(
        tenant_id="4028868",
        person_code="900001",
        document_type="certificate",
        api_version="v1.0",
        description="d",
        size=1,
        now=0.0,
        config=config,
    )
    assert ticket.status_at(4.9) == ("InProgress", [])
    assert ticket.status_at(5.0) == ("Failed", [LOCKED_MESSAGE])


def test_stalled_person_stays_in_progress_for_six_hours_then_is_rejected() -> None:
    config = SandboxConfig(ticket_delay=DelayDistribution(kind="fixed", seconds=1.0))
    ticket = TicketStore(seed=1).create(
        tenant_id="4028868",
        person_code="900002",
        document_type="diploma",
        api_version="v1.1",
        description="d",
        size=1,
        now=0.0,
        config=config,
    )
    assert ticket.status_at(6 * 3600 - 1)[0] == "InProgress"
    status, messages = ticket.status_at(6 * 3600)
    assert status == "Rejected"
    assert len(messages) == 1
    assert "6 hours" in messages[0]


def test_failure_rate_one_fails_every_ticket_and_zero_none() -> None:
    always = SandboxConfig(ticket_failure_rate=1.0)
    never = SandboxConfig(ticket_failure_rate=0.0)
    store = TicketStore(seed=3)
    for _ in range(20):
        failed = create(store, always, "1", 0.0)
        ok = create(store, never, "1", 0.0)
        assert failed.status_at(1e9)[0] == "Failed"
        assert ok.status_at(1e9)[0] == "Complete"


def test_same_seed_same_delays() -> None:
    config = SandboxConfig(ticket_failure_rate=0.3)

    def fates(seed: int) -> list[tuple[float, str]]:
        store = TicketStore(seed)
        tickets = [create(store, config, "1", 0.0) for _ in range(30)]
        return [(ticket.due_at, ticket.outcome) for ticket in tickets]

    assert fates(7) == fates(7)
    assert fates(7) != fates(8)


def test_delay_distributions() -> None:
    rng = random.Random(5)
    assert draw_delay(DelayDistribution(kind="fixed", seconds=12.0), rng) == 12.0
    uniform = [
        draw_delay(DelayDistribution(kind="uniform", low=5, high=10), rng) for _ in range(500)
    ]
    assert min(uniform) >= 5
    assert max(uniform) <= 10
    lognormal = [
        draw_delay(DelayDistribution(kind="lognormal", median=30.0, sigma=0.5), rng)
        for _ in range(2000)
    ]
    assert statistics.median(lognormal) == pytest.approx(30.0, rel=0.1)
    assert min(lognormal) > 0


def test_creation_time_has_seven_fraction_digits_and_no_zone() -> None:
    assert format_creation_time(1648821210.3985949) == "2022-04-01T13:53:30.3985949"
