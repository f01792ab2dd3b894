"""The bodies the intake answers with: a job (as `yfdocs status --json` shows it, plus
links), an acknowledged event that was not enqueued."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from intake.job_json import event_to_dict, job_to_dict
from intake.producer import EnqueueResult
from models import JobEvent, UploadJob

__all__ = ["accepted", "ignored", "job_body", "job_path"]


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
        body, status_code=status_code, headers={"Location": job_path(result.job.id)}
    )


def ignored(reason: str) -> JSONResponse:
    """An event taken and not enqueued: 200, so that the sender does not send it again."""
    return JSONResponse({"ignored": reason}, status_code=200)
