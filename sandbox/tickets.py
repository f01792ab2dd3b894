"""Upload tickets that settle asynchronously, in API time.

Each ticket draws its processing delay and its fate (seeded) when it is created; its state
is then a pure function of API time, so a time-scaled clock makes "6 hours" pass in seconds.
Seeded persons give fixed fates: `failing_person_codes` always end Failed ("Personnel file
is locked"), `stalled_person_codes` stay InProgress for the whole retry window and then
end Rejected, as the vendor describes.
"""

from __future__ import annotations

import math
import random
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from sandbox.config import DelayDistribution, SandboxConfig

__all__ = [
    "STATUS_NUMBERS",
    "Ticket",
    "TicketStore",
    "draw_delay",
]

STATUS_NUMBERS = {"InProgress": 0, "Complete": 1, "Failed": 2, "Rejected": 3}
LOCKED_MESSAGE = "Personnel file is locked"
RANDOM_FAILURE_MESSAGE = "The document could not be stored in the personnel file."
RETRY_WINDOW_MESSAGE = (
    "The document could not be delivered to the personnel file within the retry window "
    "of 6 hours and has been rejected."
)
_MAX_TICKETS = 500_000


@dataclass
class Ticket:
    """One accepted upload and the fate it was dealt."""

    ticket_id: str
    tenant_id: str
    person_code: str
    document_type: str
    api_version: str
    description: str
    size: int
    created_at: float
    due_at: float
    outcome: str
    messages: tuple[str, ...]

    def status_at(self, now: float) -> tuple[str, list[str]]:
        if now < self.due_at:
            return "InProgress", []
        return self.outcome, list(self.messages)


def draw_delay(distribution: DelayDistribution, rng: random.Random) -> float:
    """A processing delay in API seconds, never negative."""
    if distribution.kind == "fixed":
        return max(distribution.seconds, 0.0)
    if distribution.kind == "uniform":
        return max(rng.uniform(distribution.low, distribution.high), 0.0)
    return rng.lognormvariate(math.log(max(distribution.median, 1e-9)), distribution.sigma)


class TicketStore:
    """Creates and looks up tickets; thread-safe; deterministic for a given seed and order."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()
        self._rng = random.Random(f"tickets:{seed}")

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._tickets.clear()
            self._rng = random.Random(f"tickets:{seed}")

    def create(
        self,
        *,
        tenant_id: str,
        person_code: str,
        document_type: str,
        api_version: str,
        description: str,
        size: int,
        now: float,
        config: SandboxConfig,
    ) -> Ticket:
        with self._lock:
            delay = draw_delay(config.ticket_delay, self._rng)
            random_failure = self._rng.random() < config.ticket_failure_rate
            outcome = "Complete"
            messages: tuple[str, ...] = ()
            if person_code in config.stalled_person_codes:
                delay, outcome, messages = (
                    config.retry_window_s,
                    "Rejected",
                    (RETRY_WINDOW_MESSAGE,),
                )
            elif person_code in config.failing_person_codes:
                outcome, messages = "Failed", (LOCKED_MESSAGE,)
            elif random_failure:
                outcome, messages = "Failed", (RANDOM_FAILURE_MESSAGE,)
            ticket = Ticket(
                ticket_id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                person_code=person_code,
                document_type=document_type,
                api_version=api_version,
                description=description,
                size=size,
                created_at=now,
                due_at=now + delay,
                outcome=outcome,
                messages=messages,
            )
            self._tickets[ticket.ticket_id] = ticket
            if len(self._tickets) > _MAX_TICKETS:
                self._tickets.popitem(last=False)
            return ticket

    def get(self, ticket_id: str) -> Ticket | None:
        with self._lock:
            return self._tickets.get(ticket_id)

    def all(self) -> list[Ticket]:
        with self._lock:
            return list(self._tickets.values())
