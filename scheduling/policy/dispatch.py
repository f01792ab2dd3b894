"""Which waiting work goes to the workers now: the dispatcher's choice, as a pure function.

The broker holds only what can start now, a few times the fleet's concurrency (`room`), so
the order of work is decided here, where the database's whole view is, and not by a FIFO
queue. The order:

1. polls of tickets already uploaded (each costs one call and finishes a document);
2. live uploads (a completion event that just happened);
3. backfill and retries.

Within a class, tenants share the room by smooth weighted round robin (nginx's algorithm):
each pick adds every waiting tenant's weight to its credit, takes the tenant with the most
credit, and takes the total weight from it. A tenant with a 10,000-document backfill thus
delays another tenant's live event by no more than one pick, and a tenant of weight 2 gets
two picks for every one of a tenant of weight 1 while both have work. Within a tenant the
oldest work goes first.

The credit is carried from pass to pass (the caller keeps it, `credit`): a pass often has
room for one or two messages only, and a round robin that started afresh each pass would
give every one of them to the same tenant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

__all__ = ["Candidate", "WorkClass", "choose_work", "credit_key", "room_in_broker"]


class WorkClass(IntEnum):
    """How urgent a piece of work is; lower goes first."""

    POLL = 0
    LIVE_UPLOAD = 1
    BACKFILL_OR_RETRY = 2


@dataclass(frozen=True)
class Candidate:
    """A job whose next step is due: a poll or an upload."""

    job_id: str
    tenant_id: str
    work: WorkClass
    waiting_since: datetime  # when it became due (or was created): older goes first


def room_in_broker(*, fleet_concurrency: int, ready_factor: float, in_broker: int) -> int:
    """How many more messages may go to the broker now: a few times what the fleet can run
    at once, less what already waits there unclaimed."""
    target = max(1, round(fleet_concurrency * ready_factor))
    return max(0, target - in_broker)


def choose_work(
    candidates: Iterable[Candidate],
    room: int,
    weights: Mapping[str, float] | None = None,
    *,
    default_weight: float = 1.0,
    credit: MutableMapping[str, float] | None = None,
) -> list[Candidate]:
    """At most `room` candidates, in the order they should start (see the module docstring).

    `credit` (keys `credit_key(work, tenant)`) is the round robin's state from the last
    pass; it is updated in place, and tenants with nothing waiting are dropped from it.
    """
    candidates = list(candidates)
    credit = {} if credit is None else credit
    waiting_keys = {credit_key(c.work, c.tenant_id) for c in candidates}
    for key in [key for key in credit if key not in waiting_keys]:
        del credit[key]
    if room <= 0:
        return []
    weights = weights or {}
    by_class: dict[WorkClass, dict[str, list[Candidate]]] = {}
    for candidate in candidates:
        by_class.setdefault(candidate.work, {}).setdefault(candidate.tenant_id, []).append(
            candidate
        )
    chosen: list[Candidate] = []
    for work in sorted(by_class):
        queues = {
            tenant: sorted(items, key=lambda c: (c.waiting_since, c.job_id))
            for tenant, items in by_class[work].items()
        }
        chosen += _round_robin(work, queues, room - len(chosen), weights, default_weight, credit)
        if len(chosen) >= room:
            break
    return chosen


def credit_key(work: WorkClass, tenant_id: str) -> str:
    """The key of a tenant's round-robin credit within a class (a string: it is stored)."""
    return f"{int(work)}:{tenant_id}"


def _round_robin(
    work: WorkClass,
    queues: Mapping[str, Sequence[Candidate]],
    room: int,
    weights: Mapping[str, float],
    default_weight: float,
    carried: MutableMapping[str, float],
) -> list[Candidate]:
    """Smooth weighted round robin over the tenants' queues, `room` picks at most,
    starting from (and updating) the credit carried from the last pass."""
    positions = dict.fromkeys(queues, 0)
    credit = {tenant: carried.get(credit_key(work, tenant), 0.0) for tenant in queues}
    picked: list[Candidate] = []
    while len(picked) < room:
        waiting = [tenant for tenant in sorted(queues) if positions[tenant] < len(queues[tenant])]
        if not waiting:
            break
        total = 0.0
        for tenant in waiting:
            weight = weights.get(tenant, default_weight)
            credit[tenant] += weight
            total += weight
        best = max(waiting, key=lambda tenant: credit[tenant])
        credit[best] -= total
        picked.append(queues[best][positions[best]])
        positions[best] += 1
    for tenant, value in credit.items():
        carried[credit_key(work, tenant)] = value
    return picked
