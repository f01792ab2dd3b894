"""Counters a process keeps for itself, beside the fleet's numbers from the database.

**The HTTP intake's requests.** The intake (`yfdocs intake`) counts every request it
answers in `INTAKE_REQUESTS`, exported as `yfdocs_intake_requests_total{outcome}`, through
`count_intake_request(outcome)`, with one of `INTAKE_OUTCOMES`:

- `accepted`: a new job was stored and queued (201/202);
- `duplicate`: the idempotency key or event id named a job that exists (200);
- `refused`: the request was refused for what it holds, and nothing was stored (400, 413,
  415, 422): a bad PDF, an unknown document type, a malformed personCode;
- `unauthorised`: no key, or a key that is unknown or revoked (401, 403);
- `unavailable`: the intake could not take it now, database or broker down (503), which
  an LMS retries.

The counter lives in this process, so it is exported only where the intake serves its
`/metrics` (`exposition.metrics_registry(..., process_metrics=True)`); every process of
a fleet starts it at zero and Prometheus sums them.
"""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["INTAKE_OUTCOMES", "INTAKE_REQUESTS", "count_intake_request"]

INTAKE_OUTCOMES = ("accepted", "duplicate", "refused", "unauthorised", "unavailable")

INTAKE_REQUESTS = Counter(
    "yfdocs_intake_requests",
    "Requests the HTTP intake answered, by outcome",
    ["outcome"],
    registry=None,  # registered where it is served: exposition.metrics_registry
)
for _outcome in INTAKE_OUTCOMES:
    INTAKE_REQUESTS.labels(outcome=_outcome)  # every outcome is exported from the start


def count_intake_request(outcome: str) -> None:
    """Count one request the intake answered; `outcome` is one of `INTAKE_OUTCOMES`."""
    if outcome not in INTAKE_OUTCOMES:
        raise ValueError(f"unknown intake outcome {outcome!r}; expected one of {INTAKE_OUTCOMES}")
    INTAKE_REQUESTS.labels(outcome=outcome).inc()
