"""The routes of the formats real LMSs send, one per source, each thin: read the body,
prove the sender, let the source's adapter map it, hand the event to `accept_event`.

| route                                  | proves the sender by                     | answers |
| -------------------------------------- | ---------------------------------------- | ------- |
| POST /v1/webhooks/standard/{key_name}  | Standard Webhooks signature (key secret) | 202     |
| POST /v1/xapi/statements               | Bearer key, or Basic with the key        | 200     |
| POST /v1/canvas/{key_name}             | RS256 JWT body (JWKS), or Bearer key     | 202     |
| POST /v1/moodle/{key_name}             | X-Yfdocs-Secret, the key's static secret | 200     |

xAPI answers 200 with the statement ids, as an LRS must; Moodle's tool_trigger counts only
200 as delivered. A `tenant_id` query parameter names the tenant for a key that serves
several (a payload's own tenant field wins).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from intake.callers import (
    CallerNotAuthenticated,
    IntakeCaller,
    authenticate_key,
    caller_named,
    check_static_secret,
)
from intake.events import Ignored, IntakeServices, MalformedDelivery, accept_event
from intake.http.auth import services_of, xapi_caller
from intake.http.responses import OUTCOME_HEADER, accepted, duplicate, ignored
from intake.sources import canvas, moodle, standard_webhooks, xapi

__all__ = ["JSON_BODY_LIMIT", "router"]

JSON_BODY_LIMIT = 1 << 20  # JSON events carry no PDF: a megabyte is generous
XAPI_VERSION = "1.0.3"
TenantQuery = Annotated[str | None, Query(description="the tenant, for a key that serves several")]
router = APIRouter()


def _json_body(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema or {"type": "object"}}},
        }
    }


# -- Standard Webhooks -----------------------------------------------------------------------


def _standard(
    services: IntakeServices,
    key_name: str,
    body: bytes,
    headers: Mapping[str, str],
    tenant_id: str | None,
) -> JSONResponse:
    caller = caller_named(services.engine, key_name)
    message_id = standard_webhooks.verify_delivery(caller, body, headers)
    event = standard_webhooks.event_from_delivery(message_id, body, tenant_id=tenant_id)
    if isinstance(event, Ignored):
        return ignored(event.reason)
    result = accept_event(event, caller, services)
    if not result.created:
        # A resend (same webhook-id): never processed twice, answered 2xx so it stops.
        return duplicate(result)
    return accepted(result)


@router.post(
    "/v1/webhooks/standard/{key_name}",
    status_code=202,
    tags=["webhooks"],
    max_body_size=JSON_BODY_LIMIT,
    openapi_extra=_json_body("a Standard Webhooks delivery (see the README for `data`)"),
)
async def standard_webhook(
    key_name: str, request: Request, tenant_id: TenantQuery = None
) -> JSONResponse:
    """A signed Standard Webhooks delivery (`webhook-id`, `-timestamp`, `-signature`)."""
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}
    return await run_in_threadpool(
        _standard, services_of(request), key_name, body, headers, tenant_id
    )


# -- xAPI --------------------------------------------------------------------------------------


def _xapi(
    services: IntakeServices,
    caller: IntakeCaller,
    content_type: str | None,
    body: bytes,
    tenant_id: str | None,
) -> JSONResponse:
    parsed = xapi.parse_statements_request(content_type, body)
    events = xapi.events_from_statements(
        parsed,
        certificate_usage_type=services.settings.xapi_certificate_usage_type,
        tenant_id=tenant_id,
    )
    statement_ids: list[str] = []
    job_ids: list[str] = []
    created: list[bool] = []
    for statement, event in zip(parsed.statements, events, strict=True):
        statement_id = statement.get("id")
        if isinstance(event, Ignored):
            statement_ids.append(str(statement_id or ""))
            continue
        result = accept_event(event, caller, services)
        statement_ids.append(str(statement_id or event.event_key))
        job_ids.append(result.job.id)
        created.append(result.created)
    headers = {"X-Experience-API-Version": XAPI_VERSION, "X-Yfdocs-Job-Ids": ",".join(job_ids)}
    if created:
        # One request, one outcome: a new job if any statement made one, else a duplicate;
        # statements that were all ignored declare none (as `ignored`).
        headers[OUTCOME_HEADER] = "accepted" if any(created) else "duplicate"
    return JSONResponse(statement_ids, status_code=200, headers=headers)


@router.post(
    "/v1/xapi/statements",
    tags=["xapi"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "a statement or a list of them; with attachments, multipart/mixed "
            "(first part application/json, then one part per attachment with "
            "X-Experience-API-Hash and Content-Transfer-Encoding: binary)",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"type": "object"},
                            {"type": "array", "items": {"type": "object"}},
                        ]
                    }
                },
                "multipart/mixed": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def xapi_statements(
    request: Request,
    caller: Annotated[IntakeCaller, Depends(xapi_caller)],
    tenant_id: TenantQuery = None,
) -> JSONResponse:
    """xAPI statements: completed, passed or satisfied ones become jobs; the rest are
    acknowledged. Answers the statement ids, as an LRS does."""
    body = await request.body()
    return await run_in_threadpool(
        _xapi, services_of(request), caller, request.headers.get("content-type"), body, tenant_id
    )


# -- Canvas ------------------------------------------------------------------------------------


def _canvas(
    services: IntakeServices,
    key_name: str,
    body: bytes,
    authorization: str | None,
    tenant_id: str | None,
) -> JSONResponse:
    caller = caller_named(services.engine, key_name)
    event, signed = canvas.decode_canvas_body(body, services.canvas_keys, caller)
    if not signed:
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            raise CallerNotAuthenticated("an unsigned Canvas event needs the key as Bearer")
        if authenticate_key(services.engine, presented).name != caller.name:
            raise CallerNotAuthenticated("the key is not the one this URL names")
    completion = canvas.event_from_canvas(
        event,
        certificate_url_template=services.settings.canvas_certificate_url,
        tenant_id=tenant_id,
    )
    if isinstance(completion, Ignored):
        return ignored(completion.reason)
    return accepted(accept_event(completion, caller, services))


@router.post(
    "/v1/canvas/{key_name}",
    status_code=202,
    tags=["canvas"],
    max_body_size=JSON_BODY_LIMIT,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "a Live Event: an RS256 JWT (Sign Payload on), or JSON with the "
            "key as Bearer",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/jwt": {"schema": {"type": "string"}},
            },
        }
    },
)
async def canvas_event(
    key_name: str, request: Request, tenant_id: TenantQuery = None
) -> JSONResponse:
    """A Canvas Live Event; `course_completed` becomes a job, others are acknowledged."""
    body = await request.body()
    return await run_in_threadpool(
        _canvas,
        services_of(request),
        key_name,
        body,
        request.headers.get("authorization"),
        tenant_id,
    )


# -- Moodle ------------------------------------------------------------------------------------


def _moodle_fields(content_type: str | None, body: bytes) -> dict[str, str]:
    if (content_type or "").split(";", 1)[0].strip().lower() == "application/json":
        try:
            decoded = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MalformedDelivery("body", "the body is not JSON") from None
        if not isinstance(decoded, dict):
            raise MalformedDelivery("body", "the body is not a JSON object")
        return {
            str(name): value if isinstance(value, str) else json.dumps(value)
            for name, value in decoded.items()
            if value is not None
        }
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise MalformedDelivery("body", "the body is not form-encoded UTF-8") from None


def _moodle(
    services: IntakeServices,
    key_name: str,
    secret: str | None,
    content_type: str | None,
    body: bytes,
    tenant_id: str | None,
) -> JSONResponse:
    caller = caller_named(services.engine, key_name)
    check_static_secret(caller, secret, moodle.SECRET_HEADER)
    event = moodle.event_from_moodle(_moodle_fields(content_type, body), tenant_id=tenant_id)
    return accepted(accept_event(event, caller, services), status_code=200)


@router.post(
    "/v1/moodle/{key_name}",
    status_code=200,
    tags=["moodle"],
    max_body_size=JSON_BODY_LIMIT,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "tool_trigger's HTTP POST step: the configured fields",
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            name: {"type": "string"}
                            for name in (
                                "user_email",
                                "user_idnumber",
                                "courseid",
                                "coursefullname",
                                "timecompleted",
                                "certificate_url",
                            )
                        },
                    }
                },
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def moodle_event(
    key_name: str, request: Request, tenant_id: TenantQuery = None
) -> JSONResponse:
    """A Moodle course completion posted by tool_trigger, with the key's static secret."""
    body = await request.body()
    return await run_in_threadpool(
        _moodle,
        services_of(request),
        key_name,
        request.headers.get(moodle.SECRET_HEADER),
        request.headers.get("content-type"),
        body,
        tenant_id,
    )
