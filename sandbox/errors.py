"""Error answers in the shapes Youforce is documented to use.

A client must parse all three shapes, so the sandbox serves all three: gateway-level
failures (401, 429, 5xx) as `{"error": {...}}`, endpoint-level ones (403, 404, 415) as the
flat shape, validation failures (400) as RFC 7807 with an `errors` dict. `error_shape`
"nested" or "flat" forces one shape for every non-validation error. The token endpoint
speaks OAuth2 (`{"error": "invalid_client", ...}`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ApiError", "ErrorLayer", "render_error"]

ErrorLayer = str  # "gateway" | "endpoint" | "validation" | "oauth"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class ApiError(Exception):
    """An answer other than success; raised anywhere in request handling."""

    status: int
    message: str
    error_code: str
    layer: ErrorLayer = "endpoint"
    errors: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    limit: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.error_code}: {self.message}"

    @classmethod
    def validation(cls, field_name: str, message: str) -> ApiError:
        return cls(400, message, "ValidationError", "validation", {field_name: [message]})


def render_error(
    error: ApiError, *, shape: str, correlation_id: str, issued_at: str
) -> tuple[str, dict[str, Any]]:
    """The content type and JSON body for an error, always carrying the correlationId."""
    if error.layer == "oauth":
        body: dict[str, Any] = {"error": error.error_code, "error_description": error.message}
        body["correlationId"] = correlation_id
        return "application/json", body
    if error.layer == "validation":
        return "application/problem+json", {
            "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
            "title": "One or more validation errors occurred.",
            "status": error.status,
            "detail": error.message,
            "errors": error.errors or {"request": [error.message]},
            "correlationId": correlation_id,
        }
    inner = {
        "message": error.message,
        "correlationId": correlation_id,
        "issuedAt": issued_at,
        "errorCode": error.error_code,
    }
    nested = shape == "nested" or (shape == "mixed" and error.layer == "gateway")
    if nested:
        return "application/json", {"error": inner}
    return "application/json", {**inner, "statusCode": error.status}


def status_title(status: int) -> str:
    return _TITLES.get(status, "Error")
