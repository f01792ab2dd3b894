"""The bodies the intake answers with: a job (as `yfdocs status --json` shows it, plus
links), an acknowledged event that was not enqueued.

An answer to a submission names its outcome for the request counter in `OUTCOME_HEADER`
(`declared`): `accepted` for a new job, `duplicate` for one that already existed. The
counter (`intake.http.metrics.RequestCounter`) reads it and takes it off before the answer
leaves the process; errors need none, their status says it.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from intake.job_json import event_to_dict, job_to_dict
from intake.producer import EnqueueResult
from models import JobEvent, UploadJob

__all__ = ["OUTCOME_HEADER", "accepted", "declared", "duplicate", "ignored", "job_body", "job_path"]

OUTCOME_HEADER = "x-yfdocs-outcome"


def declared(result: EnqueueResult) -> dict[str, str]:
    """The header that names what `result` was for the counter: a new job or an old one."""
    return {OUTCOME_HEADER: "accepted" if result.created else "duplicate"}


def job_path(job_id: str) -> str:
    return f"/v1/jobs/{job_id}"


def job_body(job: UploadJob, events: list[JobEvent] | None = None) -> dict[str, Any]:
    body = {**job_to_dict(job), "links": {"self": job_path(job.id)}}
    if events is not None:
        body["events"] = [event_to_dict(event) for event in events]
    return body


def accepted(result: EnqueueResult, status_code: int = 202) -> JSONResponse:
    """The job an event became (or already was: `created` false), fast."""
    body = {**job_body(result.job), "created": result.created}
    return JSONResponse(
        body,
        status_code=status_code,
        headers={"Location": job_path(result.job.id), **declared(result)},
    )


def duplicate(result: EnqueueResult) -> JSONResponse:
    """A resend of a delivery that is already a job: 200, so that the sender stops."""
    return JSONResponse(
        {"duplicate": True, "id": result.job.id, "state": result.job.state},
        status_code=200,
        headers=declared(result),
    )


def ignored(reason: str) -> JSONResponse:
    """An event taken and not enqueued: 200, so that the sender does not send it again.
    It declares no outcome, so the counter leaves it out: no job was stored."""
    return JSONResponse({"ignored": reason}, status_code=200)
