"""Several processes, each with its own governor on one database, against the sandbox with
the API's real limits on (sped up by its time scale): the sandbox's own record must show
no 429, never more calls in flight than allowed, and arrivals spaced by the interval."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from models import ApiCall
from sandbox import SandboxServer
from tests.plugins.sandbox_fixtures import SandboxFactory

from .conftest import (
    Fleet,
    arrival_gaps,
    peak_in_flight,
    sandbox_requests,
    sandbox_stats,
    wall,
)

TIME_SCALE = 5.0
API_INTERVAL = 0.6 / TIME_SCALE  # the sandbox's spike arrest, in wall seconds
# The governor keeps a margin over the API's interval: the gap the API sees is the gap
# between two starts plus the difference of the two calls' delays from start to arrival,
# and on a busy test machine those differ by up to tens of milliseconds.
GOVERNOR_INTERVAL = API_INTERVAL + 0.08
CLOCK_SLACK = 0.002  # the request log has millisecond timestamps
REAL_LIMITS = {
    "max_parallel": 3,
    "spike_per_minute": 100.0,
    "daily_quota": 6000,
    "monthly_token_budget": 400,
}

pytestmark = pytest.mark.slow


def _limited_sandbox(sandbox_factory: SandboxFactory, latency: float) -> SandboxServer:
    return sandbox_factory(limits=REAL_LIMITS, time_scale=TIME_SCALE, faults={"latency_s": latency})


@pytest.mark.timeout(60)
def test_four_processes_hold_the_api_limits_together(
    sandbox_factory: SandboxFactory, database_url: str, workdir: object, engine: Engine
) -> None:
    # Each call takes 0.7 s: at one start per 0.2 s, 4 would be in flight without slots.
    server = _limited_sandbox(sandbox_factory, latency=0.7)
    fleet = Fleet(database_url, server, workdir)  # type: ignore[arg-type]

    members = [
        fleet.start("calls", documents=5, max_concurrency=3, min_interval=GOVERNOR_INTERVAL)
        for _ in range(4)
    ]
    summaries = [Fleet.summary(member) for member in members]

    assert [s["errors"] for s in summaries] == [[]] * 4
    assert [s["deferred"] for s in summaries] == [[]] * 4
    assert sum(s["uploads"] + s["statuses"] for s in summaries) == 40
    stats = sandbox_stats(server)
    assert stats["rate_limited"] == {"parallel": 0, "spike": 0, "daily": 0, "token_budget": 0}
    assert stats["token_requests"] == 1
    entries = sandbox_requests(server)
    assert len(entries) == 41
    assert all(entry["status"] in (200, 201, 202) for entry in entries), entries
    assert peak_in_flight(entries) == 3
    assert min(arrival_gaps(entries)) >= API_INTERVAL - CLOCK_SLACK
    with engine.connect() as connection:
        table = ApiCall.__table__  # type: ignore[attr-defined]
        assert connection.execute(select(table.c.id)).all().__len__() == 41


@pytest.mark.timeout(60)
def test_a_killed_holder_s_slot_is_taken_over_after_its_lease(
    sandbox_factory: SandboxFactory, database_url: str, workdir: object, engine: Engine
) -> None:
    server = _limited_sandbox(sandbox_factory, latency=0.0)
    fleet = Fleet(database_url, server, workdir)  # type: ignore[arg-type]
    lease = 2.0
    one_slot = {"max_concurrency": 1, "min_interval": GOVERNOR_INTERVAL, "lease_seconds": lease}

    victim = fleet.start("hold", **one_slot)
    assert victim.stdout is not None
    assert victim.stdout.readline().strip() == "HOLDING"
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=5)
    killed_at = time.time()
    survivors = [fleet.start("calls", documents=3, max_wait=10, **one_slot) for _ in range(2)]
    summaries = [Fleet.summary(survivor) for survivor in survivors]

    assert [s["errors"] for s in summaries] == [[], []]
    assert [s["deferred"] for s in summaries] == [[], []]
    assert sum(s["uploads"] + s["statuses"] for s in summaries) == 12
    table = ApiCall.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        calls = connection.execute(select(table).order_by(table.c.at)).all()
    held_at = calls[0].at
    assert (calls[0].kind, calls[0].status_code, calls[0].duration_ms) == ("status", None, None)
    assert calls[1].at >= held_at + timedelta(seconds=lease)
    entries = sandbox_requests(server)
    assert len(entries) == 13  # one token request and 12 calls: the held slot made none
    first_arrival = min(wall(entry["arrived_at"]) for entry in entries)
    assert first_arrival >= held_at.timestamp() + lease - CLOCK_SLACK
    assert first_arrival >= killed_at - 5  # the victim was killed before the lease ran out
    assert peak_in_flight(entries) == 1
    stats = sandbox_stats(server)
    assert stats["rate_limited"] == {"parallel": 0, "spike": 0, "daily": 0, "token_budget": 0}
