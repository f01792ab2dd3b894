"""The intake's own routes: documents handed in with their PDF, jobs read back, health.

`POST /v1/documents` is the generic form an LMS (or a script) uses; `GET /v1/jobs...`
answer "what became of it" for the caller's own tenants only (another tenant's job is a
404, exactly as a job that does not exist).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy import text

from intake.callers import IntakeCaller
from intake.events import CompletionEvent, accept_event
from intake.http.auth import bearer_caller, services_of
from intake.http.responses import accepted, job_body
from intake.validation import InvalidValidFrom
from models import JobState
from models import jobs as job_table

__all__ = ["ReadinessCheck", "router"]

ReadinessCheck = Callable[[], None]
Caller = Annotated[IntakeCaller, Depends(bearer_caller)]
router = APIRouter()


@router.post(
    "/v1/documents",
    status_code=202,
    tags=["documents"],
    responses={
        202: {"description": "The job (new, or the one this event_id already made)."},
        401: {"description": "No key, or a wrong or revoked one."},
        403: {"description": "The key does not own this tenant."},
        409: {"description": "The event_id already names a job for another document."},
        413: {"description": "The request or the PDF is too large."},
        422: {"description": "A field was refused; `field` names it."},
        503: {"description": "A transient problem: send again later."},
    },
)
def post_document(
    request: Request,
    caller: Caller,
    file: Annotated[UploadFile, File(description="the PDF")],
    document_type: Annotated[str, Form(description="certificate, diploma, ...")],
    tenant_id: Annotated[str | None, Form()] = None,
    person_code: Annotated[str | None, Form()] = None,
    email: Annotated[str | None, Form(description="instead of person_code")] = None,
    employee_number: Annotated[str | None, Form(description="instead of person_code")] = None,
    description: Annotated[str | None, Form()] = None,
    valid_from: Annotated[str | None, Form(description="YYYY-MM-DD")] = None,
    event_id: Annotated[str | None, Form(description="idempotency key of the caller")] = None,
) -> JSONResponse:
    """Validate and enqueue one PDF for one learner, answering with the job at once."""
    services = services_of(request)
    content = file.file.read(services.settings.max_file_bytes + 1)
    event = CompletionEvent(
        source="intake",
        event_key=f"document:{event_id}" if event_id is not None else None,
        tenant_id=tenant_id,
        person_code=person_code,
        email=email,
        employee_number=employee_number,
        document_type=document_type,
        description=description,
        valid_from=valid_from,
        pdf=content,
        file_name=file.filename or None,
    )
    return accepted(accept_event(event, caller, services))


_JOB_ID = re.compile(r"[0-9a-f-]{1,36}")


def _not_found(job_id: str) -> JSONResponse:
    return JSONResponse({"detail": f"no job {job_id:.40}", "field": "job_id"}, status_code=404)


@router.get("/v1/jobs/{job_id}", tags=["jobs"])
def get_job(request: Request, caller: Caller, job_id: str) -> JSONResponse:
    """One job with its history: what happened, when, and why."""
    engine = services_of(request).engine
    if not _JOB_ID.fullmatch(job_id):
        return _not_found(job_id)
    job = job_table.jobs_by_ids(engine, [job_id]).get(job_id)
    if job is None or job.tenant_id not in caller.tenants:
        return _not_found(job_id)
    return JSONResponse(job_body(job, job_table.job_events(engine, job.id)))


@router.get("/v1/jobs", tags=["jobs"])
def list_jobs(
    request: Request,
    caller: Caller,
    state: JobState | None = None,
    since: Annotated[datetime | None, Query(description="changed at or after (UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JSONResponse:
    """The caller's jobs, newest first; `since` keeps those that changed since then."""
    if since is not None:
        try:
            since = (since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone(UTC)
        except (OverflowError, ValueError):
            raise InvalidValidFrom("since", "since is out of range") from None
    jobs = job_table.list_jobs(
        services_of(request).engine,
        state=state,
        limit=limit,
        tenants=caller.tenants,
        updated_since=since,
    )
    return JSONResponse([job_body(job) for job in jobs])


@router.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"])
def readyz(request: Request) -> JSONResponse:
    """Readiness: the database and the broker are reachable (503 naming what is not)."""
    services = services_of(request)
    checks: Mapping[str, ReadinessCheck] = {
        "database": lambda: _database_reachable(services.engine),
        **request.app.state.readiness,
    }
    results: dict[str, Any] = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:
            results[name] = f"unreachable: {type(exc).__name__}"
        else:
            results[name] = "ok"
    ready = all(value == "ok" for value in results.values())
    return JSONResponse(
        results, status_code=200 if ready else 503, headers=None if ready else {"Retry-After": "30"}
    )


def _database_reachable(engine: Any) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
