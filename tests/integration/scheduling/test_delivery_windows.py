"""Two tenants, a token budget window of seconds and tokens that live a few seconds: the
dispatcher opens delivery windows at the pacer's pace, the token budget holds, every
document arrives once, and a live event enqueued behind another tenant's backfill
completes before most of that backfill (real workers, the sandbox).

Time-scaled: `YFDOCS_TOKEN_BUDGET_WINDOW` makes a month of 8 tokens last 35 seconds (after
its burst of one, the pacer allows a token every 5 s), and a token opens a window of 2.5 s,
so the backfill needs several windows and the pacer decides when each one opens. The work
starts with a budget window, so the pace binds from the first token on.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlmodel import Session, col, select

from models import ApiCall, Priority
from sandbox import DEFAULT_TENANT_ID, SandboxServer
from sandbox.config import SECOND_TENANT_ID
from scheduling.ledger import TOKEN_KIND
from tests.plugins.sandbox_fixtures import SandboxFactory
from tests.plugins.worker_fixtures import ServiceUnderTest

BUDGET = 8  # reserve 1 (a tenth, rounded up), burst 1: 7 tokens paced over the window
PACED = BUDGET - 1
BUDGET_WINDOW = 35.0
TOKEN_LIFETIME = 3.0  # API seconds; a window while it outlives the 0.5 s refresh margin
BACKFILL = 40
LIVE_PERSON = "191166"


@pytest.fixture
def sandbox(sandbox_factory: SandboxFactory) -> SandboxServer:
    """The relaxed sandbox, with tokens that expire within seconds."""
    return sandbox_factory(token_lifetime_s=TOKEN_LIFETIME)


def _entries(service: ServiceUnderTest, kind: str) -> list[dict[str, Any]]:
    return [entry for entry in service.received() if entry.get("kind") == kind]


def _token_requests(service: ServiceUnderTest) -> list[float]:
    """When the fleet's ledger counted each token request, as epoch seconds, in order."""
    with Session(service.engine) as session:
        moments = session.exec(select(ApiCall.at).where(col(ApiCall.kind) == TOKEN_KIND)).all()
    return sorted(at.timestamp() for at in moments)


def _completed_at(service: ServiceUnderTest, ticket_ids: set[str | None]) -> dict[str, float]:
    """Each ticket's last status call, in API seconds: when it was seen complete."""
    done: dict[str, float] = {}
    for entry in _entries(service, "status"):
        for ticket in ticket_ids:
            if ticket is not None and ticket in entry.get("path", ""):
                done[ticket] = max(done.get(ticket, 0.0), entry["arrived_api_s"])
    return done


@pytest.mark.slow
def test_paced_windows_keep_the_budget_deliver_everything_and_put_live_work_first(
    service: ServiceUnderTest,
) -> None:
    service.configure(
        YFDOCS_TOKEN_MONTHLY_BUDGET=str(BUDGET),
        YFDOCS_TOKEN_RESERVE="0.1",
        YFDOCS_TOKEN_BUDGET_WINDOW=str(BUDGET_WINDOW),
        YFDOCS_TOKEN_REFRESH_MARGIN="0.5",
        YFDOCS_MAX_CONCURRENCY="3",
    )
    tenant_data = service.sandbox.service.hr.tenant(SECOND_TENANT_ID)
    assert tenant_data is not None
    people = sorted(tenant_data.live_person_codes)
    service.wait_until_ready([service.start_worker(concurrency=3)])
    window_start = (time.time() // BUDGET_WINDOW + 1) * BUDGET_WINDOW
    time.sleep(window_start - time.time())  # the work begins with a budget window

    backfill = [
        service.enqueue(
            people[n % len(people)],
            title=f"backfill {n}",
            tenant_id=SECOND_TENANT_ID,
            priority=Priority.BACKFILL,
        )
        for n in range(BACKFILL)
    ]
    service.wait_until(
        lambda: bool(service.accepted_uploads()), timeout=60, what="the backfill to start"
    )
    live = service.enqueue(LIVE_PERSON, title="live event", tenant_id=DEFAULT_TENANT_ID)
    jobs = service.wait_for_end([*backfill, live], timeout=200)

    assert {job.state for job in jobs.values()} == {"complete"}
    uploads = service.accepted_uploads()
    assert sorted(entry["ticket_id"] for entry in uploads) == sorted(
        job.ticket_id for job in jobs.values()
    ), "every document arrived, each once"

    tokens = _token_requests(service)
    assert len(tokens) == len(_entries(service, "token")), "every request went by the ledger"
    assert len(tokens) >= 3, "the backfill needed more than one window of its tenant"
    for number, at in enumerate(tokens, start=1):
        index = (at - window_start) // BUDGET_WINDOW
        start = window_start + index * BUDGET_WINDOW
        in_window = sum(1 for other in tokens[:number] if other >= start)
        line = PACED * (at - start) / BUDGET_WINDOW
        # Granted while the count was under line + burst (1): the count after it stays
        # under line + 2, and never reaches the budget.
        assert in_window < line + 2, f"token {number} ran ahead of the pace: {tokens}"
        assert in_window <= BUDGET - 1

    backfill_tickets = {jobs[job_id].ticket_id for job_id in backfill}
    completed = _completed_at(service, {*backfill_tickets, jobs[live].ticket_id})
    live_done = completed[str(jobs[live].ticket_id)]
    after_live = [ticket for ticket in backfill_tickets if completed[str(ticket)] > live_done]
    assert len(after_live) > BACKFILL // 2, (
        f"only {len(after_live)} of {BACKFILL} backfill documents completed after the live one"
    )
