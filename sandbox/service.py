"""The simulated API itself: routing, authentication, limits, faults and the endpoints.

Independent of the socket layer (`server.py`), which hands over a parsed `ApiRequest` and
writes back the `ApiResponse`. The order of checks for an API call is the gateway's:
route (404) -> bearer token (401) -> app limits (429) -> injected 5xx -> tenant header
(400/403) -> scope (403) -> the endpoint's own validation (400/415) and lookups (404).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from sandbox.clock import ApiClock, format_creation_time, format_issued_at, format_utc_millis
from sandbox.config import (
    ConfigPatchError,
    SandboxConfig,
    apply_patch,
    config_to_dict,
)
from sandbox.documents import DOCUMENT_TYPES, UploadRequest, parse_upload_v10, parse_upload_v11
from sandbox.errors import ApiError, render_error
from sandbox.faults import FaultInjector, FaultPlan
from sandbox.hrdata import (
    FILTERS,
    HrData,
    PersonSeedError,
    parse_filter_timestamp,
    person_from_seed,
    strip_private_contact,
)
from sandbox.inspection import RequestLog, Stats
from sandbox.limits import LimitExceeded, RateLimiter
from sandbox.multipart import MultipartError, parse_media_type, parse_multipart
from sandbox.tickets import STATUS_NUMBERS, TicketStore
from sandbox.tokens import IssuedToken, TokenCheck, TokenStore

__all__ = ["ApiRequest", "ApiResponse", "SandboxService", "match_route", "request_kind"]

logger = logging.getLogger(__name__)

TOKEN_PATH = "/connect/token"  # noqa: S105 - a URL path
ADMIN_PREFIX = "/_sandbox/"
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_TOKEN_FIELDS = ("grant_type", "client_id", "client_secret", "tenant_id")
_LOGGED_FORM_FIELDS = ("grant_type", "client_id", "tenant_id", "scope")
_SECRETISH = ("secret", "token", "password", "key")
_TENANT_HEADER = "X-Raet-Tenant-Id"
_INVALID_TOKEN = "keymanagement.service.invalid_access_token"  # noqa: S105 - a fault code
_EXPIRED_TOKEN = "keymanagement.service.access_token_expired"  # noqa: S105 - a fault code
_HOLD_LIMIT_S = 60.0


@dataclass
class ApiRequest:
    """One request as the socket layer read it."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    arrived_api: float
    entry: dict[str, Any]

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


@dataclass
class ApiResponse:
    """Status, headers and a body ready to write."""

    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, content_type: str = "application/json") -> ApiResponse:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return cls(status, body, f"{content_type}; charset=utf-8")


@dataclass(frozen=True)
class Route:
    """A matched API path: which endpoint, its path parameters, and the scope it needs."""

    endpoint: str
    method: str
    scope: str
    params: dict[str, str]


def match_route(path: str) -> Route | None:
    """The API route for a path, or None (404). Segments are case-sensitive and raw.

    The real API matches the raw path segment: `191%31%36%36` is not the personCode
    191166, and no personCode or ticketId contains a `%`. So segments are never decoded,
    and a `%` in a personCode ends as 404 (no employee has that code, as for any other
    unknown code) and in a ticketId as 400 (not a ticketId, as for any other malformed
    one): the answers the gateway gives for those values, with no special case that a
    client could learn to rely on. Only a cost allocation id is decoded: the vendor's own
    example sends its inner spaces as `%20`.
    """
    segments = path.split("/")
    if segments[:2] != ["", "learning"] or any(not part for part in segments[1:]):
        return None
    parts = segments[2:]
    match parts:
        case ["v1.1", "employees", person, "documents", doc_type] if doc_type in DOCUMENT_TYPES:
            return Route(
                "upload_v1.1", "POST", "Upload_documents", {"person": person, "type": doc_type}
            )
        case ["v1.0", "employees", "documents", ticket_id, "status"]:
            return Route("status", "GET", "Upload_documents", {"ticket": ticket_id})
        case ["v1.0", "employees", person, "documents", "certificate"]:
            return Route(
                "upload_v1.0", "POST", "Upload_documents", {"person": person, "type": "certificate"}
            )
        case ["v1.0", "costAllocations", allocation_id]:
            return Route("costAllocations", "GET", "Get_Basic", {"id": unquote(allocation_id)})
        case ["v1.0", resource] if resource in FILTERS:
            return Route(resource, "GET", "Get_Basic", {})
    return None


_KINDS = {"upload_v1.1": "upload", "upload_v1.0": "upload", "status": "status"}


def request_kind(path: str) -> str:
    """What a request is, as the client's governor counts calls: token, upload, status, read.

    Anything that matches no route is "unknown" (it still counts against the limits).
    """
    if path == TOKEN_PATH:
        return "token"
    route = match_route(path)
    if route is None:
        return "unknown"
    return _KINDS.get(route.endpoint, "read")


def _iso_wall(epoch: float) -> str:
    return format_utc_millis(epoch)


def _mask_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    masked = [
        (key, "<redacted>" if any(word in key.lower() for word in _SECRETISH) else value)
        for key, value in pairs
    ]
    return urlencode(masked, quote_via=quote, safe=":")


class SandboxService:
    """All state of one sandbox: config, clock, tokens, limits, tickets, data, log."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock = ApiClock(config.time_scale, frozen=config.clock_frozen)
        self.tokens = TokenStore()
        self.limiter = RateLimiter()
        self.tickets = TicketStore(config.seed)
        self.faults = FaultInjector(config.seed)
        self.hr = HrData(config.tenants, config.seed)
        self.log = RequestLog(config.request_log_size)
        self.stats = Stats()
        self.base_url = ""
        self._config_lock = threading.Lock()
        self._sleep: Callable[[float], None] = time.sleep
        self._calls_released = threading.Event()
        self._calls_released.set()
        self._held_lock = threading.Lock()
        self._held_now = 0

    # -- request log -------------------------------------------------------------------

    def open_entry(
        self,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        arrived_api: float | None = None,
    ) -> dict[str, Any]:
        """Log a request as it arrives (before its body is read).

        `arrived_api_s` is the arrival in API seconds (epoch based, on the clock that never
        runs backwards and that the limits are judged on) and `kind` what the call is
        (token, upload, status, read, unknown): together the record a benchmark needs to
        compare how often calls started with the spacing the limits allow. Calls arriving
        at once may enter the log in either order: sort by `arrived_api_s`, not by `seq`.
        """
        if arrived_api is None:
            arrived_api = self.clock.now()
        shown: dict[str, str] = {}
        for name, value in headers:
            if name.lower() in ("authorization", "proxy-authorization"):
                value = self.tokens.marker(value)
            elif name.lower() == "cookie":
                value = "<redacted>"
            shown[name] = f"{shown[name]}, {value}" if name in shown else value
        return self.log.open(
            {
                "arrived_at": _iso_wall(time.time()),
                "arrived_api_time": format_utc_millis(arrived_api),
                "arrived_api_s": arrived_api,
                "kind": request_kind(path),
                "completed_at": None,
                "method": method,
                "path": path,
                "query": _mask_query(query),
                "headers": shown,
                "endpoint": None,
                "status": None,
                "ticket_id": None,
                "error_code": None,
                "correlation_id": None,
                "fault": None,
                "added_latency_s": None,
                "limit": None,
                "body_size": None,
                "body_sha256": None,
                "content_type": None,
                "multipart": None,
                "form": None,
            }
        )

    def describe_body(self, request: ApiRequest) -> None:
        """Log the body as sizes, digests and the text of non-file parts (never raw bytes)."""
        content_type = request.header("Content-Type")
        fields: dict[str, Any] = {
            "body_size": len(request.body),
            "body_sha256": hashlib.sha256(request.body).hexdigest(),
            "content_type": content_type,
        }
        media_type, params = parse_media_type(content_type)
        if media_type.startswith("multipart/") and params.get("boundary"):
            try:
                parts = parse_multipart(request.body, params["boundary"])
            except MultipartError as exc:
                fields["multipart"] = {"media_type": media_type, "error": str(exc), "parts": []}
            else:
                fields["multipart"] = {
                    "media_type": media_type,
                    "boundary": params["boundary"],
                    "parts": [
                        {
                            "headers": dict(part.headers),
                            "name": part.name,
                            "filename": part.filename,
                            "content_type": part.content_type,
                            "size": len(part.data),
                            "sha256": hashlib.sha256(part.data).hexdigest(),
                            "text": None
                            if part.filename is not None or part.content_type == "application/pdf"
                            else part.data.decode("utf-8", "replace"),
                        }
                        for part in parts
                    ],
                }
        self.log.update(request.entry, **fields)

    def finish_entry(
        self, entry: dict[str, Any], response: ApiResponse | None, **fields: Any
    ) -> None:
        if response is not None:
            fields["status"] = response.status
            self.stats.count("responses_by_status", str(response.status))
        self.log.update(entry, completed_at=_iso_wall(time.time()), **fields)

    # -- errors ------------------------------------------------------------------------

    def error_response(self, error: ApiError, entry: dict[str, Any]) -> ApiResponse:
        correlation_id = str(uuid.uuid4())
        content_type, payload = render_error(
            error,
            shape=self.config.error_shape,
            correlation_id=correlation_id,
            issued_at=format_issued_at(self.clock.now()),
        )
        response = ApiResponse.json(error.status, payload, content_type)
        response.headers.update(error.headers)
        response.headers["X-Correlation-Id"] = correlation_id
        self.log.update(entry, error_code=error.error_code, correlation_id=correlation_id)
        return response

    # -- token endpoint ----------------------------------------------------------------

    def handle_token(self, request: ApiRequest) -> ApiResponse:
        self.stats.count("token_requests")
        self.stats.count("calls_by_endpoint", "token")
        self.log.update(request.entry, endpoint="token")
        try:
            response = self._issue_token(request)
        except ApiError as error:
            response = self.error_response(error, request.entry)
        response.headers.setdefault("X-Correlation-Id", str(uuid.uuid4()))
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    def _issue_token(self, request: ApiRequest) -> ApiResponse:
        def oauth(status: int, code: str, message: str) -> ApiError:
            return ApiError(status, message, code, "oauth")

        if request.method != "POST":
            raise oauth(405, "invalid_request", "The token endpoint accepts POST only.")
        media_type, _params = parse_media_type(request.header("Content-Type"))
        if media_type != "application/x-www-form-urlencoded":
            raise oauth(400, "invalid_request", "Body must be application/x-www-form-urlencoded.")
        directives = {
            item.strip().lower() for item in (request.header("Cache-Control") or "").split(",")
        }
        if "no-cache" not in directives:
            raise oauth(400, "invalid_request", "The header Cache-Control: no-cache is mandatory.")
        try:
            pairs = parse_qsl(
                request.body.decode("ascii"), keep_blank_values=True, strict_parsing=True
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise oauth(400, "invalid_request", "Malformed form body.") from exc
        form: dict[str, str] = {}
        for key, value in pairs:
            if key in form:
                raise oauth(400, "invalid_request", f"Field {key!r} appears more than once.")
            form[key] = value
        self.log.update(
            request.entry,
            form={
                key: value if key in _LOGGED_FORM_FIELDS else "<redacted>"
                for key, value in form.items()
            },
        )
        unknown = sorted(set(form) - {*_TOKEN_FIELDS, "scope"})
        if unknown:
            raise oauth(400, "invalid_request", f"Unexpected fields: {', '.join(unknown)}.")
        for name in _TOKEN_FIELDS:
            if not form.get(name):
                raise oauth(400, "invalid_request", f"The field {name!r} is required.")
        if form["grant_type"] != "client_credentials":
            raise oauth(400, "unsupported_grant_type", "Only client_credentials is supported.")
        app = self.config.client(form["client_id"])
        if app is None or not hmac.compare_digest(
            app.client_secret.encode(), form["client_secret"].encode()
        ):
            raise oauth(401, "invalid_client", "Unknown client or wrong secret.")
        if form["tenant_id"] not in app.tenants or self.hr.tenant(form["tenant_id"]) is None:
            raise oauth(400, "unauthorized_client", "The tenant is not linked to this client.")
        scopes = app.scopes
        if "scope" in form:
            asked = tuple(form["scope"].split())
            if not asked or not set(asked) <= set(app.scopes):
                raise oauth(400, "invalid_scope", "A requested scope is not granted to this app.")
            scopes = asked
        now = self.clock.now()
        if not self.tokens.take_budget(app.client_id, now, self.config.limits.monthly_token_budget):
            self.stats.count("rate_limited", "token_budget")
            raise ApiError(
                429,
                "Token request quota exceeded: at most "
                f"{self.config.limits.monthly_token_budget} token requests per month.",
                "rate_limit_exceeded",
                "oauth",
                limit="token_budget",
            )
        lifetime = self.config.token_lifetime_s
        token = self.tokens.issue(app.client_id, form["tenant_id"], scopes, now, lifetime)
        self.stats.count("tokens_issued")
        self.log.update(request.entry, token=f"token#{token.number}")
        # The client keeps time on its own clock: at a time scale, say how long the token
        # lives in the client's seconds, as the real API does in real seconds.
        client_lifetime = max(1, round(lifetime / self.config.time_scale))
        payload: dict[str, Any] = {
            "access_token": token.value,
            "expires_in": client_lifetime,
            "token_type": "Bearer",
            "scope": " ".join(scopes),
        }
        if self.config.legacy_token_answer:
            payload["expires_in"] = str(client_lifetime)
            payload["token_type"] = "BearerToken"  # noqa: S105 - a token type name
        return ApiResponse.json(200, payload)

    # -- API calls ---------------------------------------------------------------------

    def handle_api(self, request: ApiRequest, plan: FaultPlan) -> ApiResponse:
        route = match_route(request.path)
        self.log.update(request.entry, endpoint=route.endpoint if route else "unknown")
        self.stats.count("calls_by_endpoint", route.endpoint if route else "unknown")
        try:
            if route is None:
                raise ApiError(404, f"No resource matches {request.path!r}.", "NotFound")
            if request.method != route.method:
                raise ApiError(405, f"{request.method} is not allowed here.", "MethodNotAllowed")
            if plan.revoke_tokens:
                self.stats.count("faults", "revocations")
                self.tokens.revoke_all()
            token = self._authenticate(request)
            admission = self._admit(token, request)
            try:
                self._wait_while_held()
                if plan.latency_s > 0:
                    self.stats.count("faults", "latency_added")
                    self.log.update(request.entry, added_latency_s=plan.latency_s)
                    self._sleep(plan.latency_s)
                if plan.server_error is not None:
                    self.stats.count("faults", "server_errors")
                    self.log.update(request.entry, fault=f"server_error_{plan.server_error}")
                    raise ApiError(
                        plan.server_error,
                        "The service is temporarily unavailable."
                        if plan.server_error == 503
                        else "An unexpected error occurred.",
                        "ServiceUnavailable" if plan.server_error == 503 else "InternalServerError",
                        "gateway",
                    )
                tenant_id = self._check_tenant(request, token)
                if route.scope not in token.scopes:
                    raise ApiError(
                        403, f"The scope {route.scope} is not granted to this app.", "Forbidden"
                    )
                return self._dispatch(route, request, token, tenant_id)
            finally:
                admission.release()
        except ApiError as error:
            return self.error_response(error, request.entry)

    def _wait_while_held(self) -> None:
        """Keep an admitted call in flight while `/_sandbox/hold` holds calls.

        Lets a test fill the parallel slots for as long as it needs, instead of hoping that
        an added latency outlasts the other threads' start. A forgotten hold ends after
        `_HOLD_LIMIT_S`, so a failing test cannot hang the server.
        """
        if self._calls_released.is_set():
            return
        with self._held_lock:
            self._held_now += 1
        try:
            self._calls_released.wait(_HOLD_LIMIT_S)
        finally:
            with self._held_lock:
                self._held_now -= 1

    def hold_calls(self, held: bool) -> dict[str, Any]:
        """Hold admitted API calls in flight (True) or let every held call go on (False)."""
        if held:
            self._calls_released.clear()
        else:
            self._calls_released.set()
        return self._hold_view()

    def _hold_view(self) -> dict[str, Any]:
        with self._held_lock:
            waiting = self._held_now
        return {"held": not self._calls_released.is_set(), "calls_waiting": waiting}

    def _authenticate(self, request: ApiRequest) -> IssuedToken:
        authorization = request.header("Authorization")
        if not authorization:
            raise ApiError(
                401,
                "The Authorization header is missing.",
                _INVALID_TOKEN,
                "gateway",
            )
        scheme, _space, value = authorization.partition(" ")
        if scheme != "Bearer" or not value.strip():
            raise ApiError(
                401,
                "The Authorization header must be 'Bearer <access_token>'.",
                _INVALID_TOKEN,
                "gateway",
            )
        check, token = self.tokens.check(value.strip(), self.clock.now())
        if check is TokenCheck.VALID and token is not None:
            self.log.update(request.entry, token=f"token#{token.number}")
            return token
        messages = {
            TokenCheck.UNKNOWN: (
                "Invalid access token.",
                _INVALID_TOKEN,
            ),
            TokenCheck.EXPIRED: (
                "Access token expired.",
                _EXPIRED_TOKEN,
            ),
            TokenCheck.REVOKED: (
                "Access token revoked.",
                _INVALID_TOKEN,
            ),
        }
        message, code = messages[check]
        raise ApiError(401, message, code, "gateway")

    def _admit(self, token: IssuedToken, request: ApiRequest) -> Any:
        limits = self.config.limits
        try:
            return self.limiter.admit(
                token.client_id, request.arrived_api, self.clock.now(), limits
            )
        except LimitExceeded as exceeded:
            self.stats.count("rate_limited", exceeded.limit)
            self.log.update(request.entry, limit=exceeded.limit)
            headers = {}
            if limits.send_retry_after:
                wait = self.clock.wall_seconds(exceeded.retry_after_api_s)
                headers["Retry-After"] = str(max(1, math.ceil(wait)))
            raise ApiError(
                429,
                exceeded.message,
                exceeded.error_code,
                "gateway",
                headers=headers,
                limit=exceeded.limit,
            ) from exceeded

    def _check_tenant(self, request: ApiRequest, token: IssuedToken) -> str:
        tenant_id = request.header(_TENANT_HEADER)
        if tenant_id is None or not tenant_id.strip():
            raise ApiError.validation(_TENANT_HEADER, f"The {_TENANT_HEADER} header is required.")
        if tenant_id != token.tenant_id:
            raise ApiError(
                403, "The tenant in X-Raet-Tenant-Id does not match the access token.", "Forbidden"
            )
        return tenant_id

    def _dispatch(
        self, route: Route, request: ApiRequest, token: IssuedToken, tenant_id: str
    ) -> ApiResponse:
        if route.endpoint in ("upload_v1.1", "upload_v1.0"):
            return self._upload(route, request, tenant_id)
        if route.endpoint == "status":
            return self._status(route.params["ticket"], tenant_id)
        if route.endpoint == "costAllocations":
            return self._cost_allocation(route.params["id"], tenant_id)
        private = "GetPrivateContactDetails" in token.scopes
        return self._list(route.endpoint, request, tenant_id, private)

    def _status_value(self, name: str) -> str | int:
        return STATUS_NUMBERS[name] if self.config.status_format == "numbers" else name

    def _upload(self, route: Route, request: ApiRequest, tenant_id: str) -> ApiResponse:
        content_type = request.header("Content-Type")
        max_bytes = self.config.max_file_bytes
        parsed: UploadRequest
        if route.endpoint == "upload_v1.1":
            parsed = parse_upload_v11(content_type, request.body, max_bytes)
        else:
            parsed = parse_upload_v10(content_type, request.body, max_bytes)
        person = route.params["person"]
        if not self.hr.person_exists(tenant_id, person):
            raise ApiError(404, f"Employee with personCode {person!r} not found.", "NotFound")
        now = self.clock.now()
        ticket = self.tickets.create(
            tenant_id=tenant_id,
            person_code=person,
            document_type=route.params["type"],
            api_version=route.endpoint.removeprefix("upload_"),
            description=parsed.description,
            size=len(parsed.data),
            now=now,
            config=self.config,
        )
        self.stats.count("uploads_accepted")
        self.log.update(request.entry, ticket_id=ticket.ticket_id)
        return ApiResponse.json(
            200,
            {
                "ticketId": ticket.ticket_id,
                "description": parsed.description,
                "size": len(parsed.data),
                "tenantId": tenant_id,
                "creationDateTime": format_creation_time(now),
                "status": self._status_value("InProgress"),
                "errorMessages": [],
            },
        )

    def _status(self, ticket_id: str, tenant_id: str) -> ApiResponse:
        if not _UUID_RE.fullmatch(ticket_id):
            raise ApiError.validation(
                "ticketId", f"The value {ticket_id!r} is not a valid ticketId."
            )
        ticket = self.tickets.get(ticket_id.lower())
        if ticket is None or ticket.tenant_id != tenant_id:
            raise ApiError(404, f"Ticket {ticket_id} not found.", "NotFound")
        status, messages = ticket.status_at(self.clock.now())
        return ApiResponse.json(
            200, {"status": self._status_value(status), "errorMessages": messages}
        )

    def _cost_allocation(self, allocation_id: str, tenant_id: str) -> ApiResponse:
        data = self.hr.tenant(tenant_id)
        record = data.cost_allocations.get(allocation_id) if data else None
        if record is None:
            raise ApiError(404, f"Cost allocation {allocation_id!r} not found.", "NotFound")
        return ApiResponse.json(200, record.render())

    def _list(
        self, resource: str, request: ApiRequest, tenant_id: str, private: bool
    ) -> ApiResponse:
        pairs = parse_qsl(request.query, keep_blank_values=True)
        # ASP.NET binds query names case-insensitively; so does the sandbox.
        query: dict[str, str] = {}
        for key, value in pairs:
            if key.lower() in query:
                raise ApiError.validation(key, f"The parameter {key!r} is given more than once.")
            query[key.lower()] = value
        take = self._int_param(query, "take", self.config.default_take)
        if not 1 <= take <= self.config.max_take:
            raise ApiError.validation("take", f"take must be between 1 and {self.config.max_take}.")
        skip = self._int_param(query, "skip", 0)
        bounds: dict[str, float | None] = {}
        for name in ("changedAfter", "changedUntil"):
            raw = query.get(name.lower())
            bounds[name] = None
            if raw is not None:
                parsed = parse_filter_timestamp(raw)
                if parsed is None:
                    raise ApiError.validation(
                        name, f"{name} must be a UTC timestamp YYYY-MM-DDTHH:MM:SS.sssZ."
                    )
                bounds[name] = parsed
        filters = {name: query[name.lower()] for name in FILTERS[resource] if name.lower() in query}
        records = self.hr.select(
            tenant_id,
            resource,
            filters=filters,
            changed_after=bounds["changedAfter"],
            changed_until=bounds["changedUntil"],
        )
        page = records[skip : skip + take]
        transform = strip_private_contact if resource == "persons" and not private else None
        payload: dict[str, Any] = {
            self.config.records_key: [record.render(transform) for record in page]
        }
        if skip + take < len(records):
            kept = [(key, value) for key, value in pairs if key.lower() not in ("take", "skip")]
            kept += [("take", str(take)), ("skip", str(skip + take))]
            payload["nextLink"] = f"{self.base_url}{request.path}?{urlencode(kept)}"
        return ApiResponse.json(200, payload)

    @staticmethod
    def _int_param(query: dict[str, str], name: str, default: int) -> int:
        raw = query.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or not raw.isascii():
            raise ApiError.validation(name, f"{name} must be a non-negative integer.")
        return int(raw)

    # -- admin ---------------------------------------------------------------------------

    def admin(self, method: str, path: str, query: str, body: bytes) -> ApiResponse:
        """The `/_sandbox/` endpoints; never part of the API surface, never show secrets.

        GET requests (the log; `?since=SEQ`), stats, config, tickets, clock, hold;
        POST config (a patch), reset, revoke-tokens, clock/advance `{"seconds"}`,
        hold `{"held"}`, persons `{"tenant_id", "changed_at", "persons", "deleted"}`.
        """
        name = path.removeprefix(ADMIN_PREFIX)
        routes: dict[tuple[str, str], Callable[[], ApiResponse]] = {
            ("GET", "requests"): lambda: self._admin_requests(query),
            ("GET", "stats"): lambda: ApiResponse.json(200, self.stats_snapshot()),
            ("GET", "config"): lambda: ApiResponse.json(200, config_to_dict(self.config)),
            ("POST", "config"): lambda: self._admin_patch(body),
            ("POST", "reset"): self._admin_reset,
            ("POST", "revoke-tokens"): lambda: ApiResponse.json(
                200, {"revoked": self.tokens.revoke_all()}
            ),
            ("GET", "tickets"): self._admin_tickets,
            ("GET", "clock"): lambda: ApiResponse.json(200, self.clock_view()),
            ("POST", "clock/advance"): lambda: self._admin_advance(body),
            ("GET", "hold"): lambda: ApiResponse.json(200, self._hold_view()),
            ("POST", "hold"): lambda: self._admin_hold(body),
            ("POST", "persons"): lambda: self._admin_persons(body),
        }
        handler = routes.get((method, name))
        if handler is None:
            return ApiResponse.json(404, {"message": f"No sandbox endpoint {method} {path}."})
        return handler()

    def _admin_requests(self, query: str) -> ApiResponse:
        since_raw = dict(parse_qsl(query)).get("since", "0")
        since = int(since_raw) if since_raw.isdigit() else 0
        entries = self.log.snapshot(since)
        body = json.dumps({"requests": entries}, separators=(",", ":"))
        for app in self.config.clients:
            body = body.replace(app.client_secret, "<redacted>")
        return ApiResponse(200, body.encode("utf-8"))

    def stats_snapshot(self) -> dict[str, Any]:
        return self.stats.snapshot(
            {
                "daily_calls": {
                    app.client_id: self.limiter.daily_calls(app.client_id)
                    for app in self.config.clients
                },
                "tickets": len(self.tickets.all()),
                "api_time": format_utc_millis(self.clock.now()),
            }
        )

    def patch_config(self, patch: dict[str, Any]) -> None:
        with self._config_lock:
            apply_patch(self.config, patch)
            if self.clock.time_scale != self.config.time_scale:
                self.clock.set_scale(self.config.time_scale)
            if self.clock.frozen != self.config.clock_frozen:
                self.clock.set_frozen(self.config.clock_frozen)

    def clock_view(self) -> dict[str, Any]:
        """API time as seconds (the unit of every arrival in the request log) and as text."""
        now = self.clock.now()
        return {
            "api_seconds": now,
            "api_time": format_utc_millis(now),
            "frozen": self.clock.frozen,
            "time_scale": self.clock.time_scale,
        }

    def _admin_advance(self, body: bytes) -> ApiResponse:
        """`{"seconds": N}`: move API time forward by N API seconds."""
        problem = 'The body must be a JSON object {"seconds": <non-negative number>}.'
        try:
            payload = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return ApiResponse.json(400, {"message": problem})
        seconds = payload.get("seconds") if isinstance(payload, dict) else None
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or seconds < 0
        ):
            return ApiResponse.json(400, {"message": problem})
        self.clock.advance(float(seconds))
        return ApiResponse.json(200, self.clock_view())

    def _admin_hold(self, body: bytes) -> ApiResponse:
        """`{"held": true}` holds admitted API calls in flight; `{"held": false}` lets them go."""
        try:
            payload = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        held = payload.get("held") if isinstance(payload, dict) else None
        if not isinstance(held, bool):
            return ApiResponse.json(400, {"message": 'The body must be {"held": true|false}.'})
        return ApiResponse.json(200, self.hold_calls(held))

    def _admin_patch(self, body: bytes) -> ApiResponse:
        try:
            patch = json.loads(body or b"{}")
            self.patch_config(patch)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return ApiResponse.json(400, {"message": "The config patch must be JSON."})
        except ConfigPatchError as exc:
            return ApiResponse.json(400, {"message": str(exc)})
        return ApiResponse.json(200, config_to_dict(self.config))

    def _admin_persons(self, body: bytes) -> ApiResponse:
        """Seed persons and deletions for the readers, at one change time.

        `{"tenant_id": "4028868", "changed_at": "2024-07-01T12:00:00.000Z",
        "persons": [{"personCode": "555001", "emailAddresses": [...], ...}],
        "deleted": ["907624"]}`; `changed_at` defaults to the API time now.
        """
        try:
            payload = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return ApiResponse.json(400, {"message": "The body must be a JSON object."})
        try:
            if not isinstance(payload, dict):
                raise PersonSeedError("the body must be a JSON object")
            unknown = sorted(set(payload) - {"tenant_id", "changed_at", "persons", "deleted"})
            if unknown:
                raise PersonSeedError(f"unknown fields {unknown}")
            tenant_id = payload.get("tenant_id")
            if not isinstance(tenant_id, str):
                raise PersonSeedError("tenant_id is required")
            raw_time = payload.get("changed_at")
            changed_at = self.clock.now() if raw_time is None else None
            if isinstance(raw_time, str):
                changed_at = parse_filter_timestamp(raw_time)
            if changed_at is None:
                raise PersonSeedError("changed_at must be a UTC timestamp YYYY-MM-DDTHH:MM:SS.sssZ")
            persons_raw = payload.get("persons", [])
            deleted = payload.get("deleted", [])
            if not isinstance(persons_raw, list):
                raise PersonSeedError("persons must be a list")
            if not isinstance(deleted, list) or not all(isinstance(i, str) for i in deleted):
                raise PersonSeedError("deleted must be a list of ids")
            persons = [person_from_seed(item) for item in persons_raw]
            self.hr.seed_persons(tenant_id, persons=persons, deleted=deleted, changed_at=changed_at)
        except PersonSeedError as exc:
            return ApiResponse.json(400, {"message": str(exc)})
        return ApiResponse.json(
            200,
            {
                "tenant_id": tenant_id,
                "changed_at": format_utc_millis(changed_at),
                "seeded": [person["id"] for person in persons],
                "deleted": deleted,
            },
        )

    def reset(self) -> None:
        """Forget requests, tickets and counters; issued tokens stay valid."""
        self.log.clear()
        self.stats.reset()
        self.limiter.reset()
        self.tokens.reset_budget()
        self.tickets.reseed(self.config.seed)
        self.faults.reseed(self.config.seed)

    def _admin_reset(self) -> ApiResponse:
        self.reset()
        return ApiResponse.json(200, {"reset": True})

    def _admin_tickets(self) -> ApiResponse:
        now = self.clock.now()
        tickets = []
        for ticket in self.tickets.all():
            state, messages = ticket.status_at(now)
            tickets.append(
                {
                    "ticket_id": ticket.ticket_id,
                    "tenant_id": ticket.tenant_id,
                    "person_code": ticket.person_code,
                    "document_type": ticket.document_type,
                    "api_version": ticket.api_version,
                    "size": ticket.size,
                    "state": state,
                    "outcome": ticket.outcome,
                    "error_messages": messages,
                    "created_at": format_utc_millis(ticket.created_at),
                    "due_at": format_utc_millis(ticket.due_at),
                }
            )
        return ApiResponse.json(200, {"api_time": format_utc_millis(now), "tickets": tickets})
