"""How the intake answers an exception: one function picks the status, handlers shape it.

    EnqueueRejected             4xx, naming the field and the problem; nothing was stored
    ├── CallerNotAuthenticated  401
    ├── TenantNotPermitted      403
    ├── IdempotencyConflict     409
    ├── FileTooLarge            413
    ├── MalformedDelivery       400
    └── anything else           422
    YfdocsError refuse          422 (a job id that names no job is a 404, in the route)
    YfdocsError retry/defer/release, a database that is busy or gone, a full disk
                                503 with Retry-After: never a 4xx or a 429, because
                                Totara's webhooks dead-letter any 4xx at once
    anything else               500, logged: a bug, never bad input

Bodies are `{"detail": "...", "field": "..."}`; no secret, SQL statement or parameter
ever appears in one.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from intake.callers import CallerNotAuthenticated, TenantNotPermitted
from intake.events import MalformedDelivery
from intake.producer import IdempotencyConflict
from intake.validation import EnqueueRejected, FileTooLarge
from models.errors import Decision, YfdocsError

__all__ = ["RETRY_AFTER_SECONDS", "install_error_handlers", "status_for"]

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
# The producer's field names, as the HTTP forms call them.
_FIELD_NAMES = {"key": "event_id"}
_INFRASTRUCTURE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout, OSError)


def status_for(exc: YfdocsError) -> int:
    """The HTTP status for an error of the service's tree."""
    if isinstance(exc, EnqueueRejected):
        for kind, status in (
            (CallerNotAuthenticated, 401),
            (TenantNotPermitted, 403),
            (IdempotencyConflict, 409),
            (FileTooLarge, 413),
            (MalformedDelivery, 400),
        ):
            if isinstance(exc, kind):
                return status
        return 422
    return 422 if exc.decision is Decision.REFUSE else 503


def _unavailable(what: str) -> JSONResponse:
    return JSONResponse(
        {"detail": f"{what}; try again later"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, YfdocsError)
    status = status_for(exc)
    if status == 503:
        log.warning("%s %s: 503: %s", request.method, request.url.path, exc)
        return _unavailable(str(exc))
    body: dict[str, str | None] = (
        {"detail": exc.message, "field": _FIELD_NAMES.get(exc.field, exc.field)}
        if isinstance(exc, EnqueueRejected)
        else {"detail": str(exc), "field": None}
    )
    log.info("%s %s: %d %s", request.method, request.url.path, status, body["detail"])
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _infrastructure_error(request: Request, exc: Exception) -> JSONResponse:
    # The exception's text may hold SQL and its parameters: only its kind is logged.
    log.warning("%s %s: 503: %s", request.method, request.url.path, type(exc).__name__)
    what = "the storage is unavailable" if isinstance(exc, OSError) else "the database is busy"
    return _unavailable(what)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
    field = location[-1] if location else None
    message = str(first.get("msg", "invalid request"))
    return JSONResponse(
        {"detail": f"{field}: {message}" if field else message, "field": field}, status_code=422
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s: 500: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(YfdocsError, _service_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    for kind in _INFRASTRUCTURE:
        app.add_exception_handler(kind, _infrastructure_error)
    app.add_exception_handler(Exception, _unexpected)
