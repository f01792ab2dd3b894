"""The error tree, the one status mapping, the error body shapes and Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from api_client import error_for_response, parse_retry_after
from api_client import errors as e

from .fakes import make_response


def _response(status: int, body: object = None, **kwargs: object) -> requests.Response:
    request = requests.Request("POST", "https://api.test/learning/v1.1/x").prepare()
    return make_response(request, status, body, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, e.BadRequestError, False),
        (401, e.AuthenticationError, False),
        (403, e.PermissionDeniedError, False),
        (404, e.NotFoundError, False),
        (409, e.ConflictError, True),
        (429, e.RateLimitError, True),
        (500, e.ServerError, True),
        (502, e.ServerError, True),
        (503, e.ServerError, True),
        (504, e.ServerError, True),
        (599, e.ServerError, True),
        (302, e.UnexpectedStatusError, False),
        (405, e.UnexpectedStatusError, False),
        (408, e.UnexpectedStatusError, True),
        (413, e.UnexpectedStatusError, False),
        (422, e.UnexpectedStatusError, False),
    ],
)
def test_status_maps_to_one_class(
    status: int, cls: type[e.APIStatusError], retryable: bool
) -> None:
    error = error_for_response(_response(status, {"message": "m"}))
    assert type(error) is cls
    assert isinstance(error, e.APIStatusError)
    assert error.status_code == status
    assert error.retryable is retryable
    assert error.method == "POST"
    assert error.url == "https://api.test/learning/v1.1/x"


def test_tree_shape() -> None:
    assert issubclass(e.ConnectTimeout, e.ConnectError)
    for cls in (e.ConnectError, e.ReadTimeout, e.ConnectionDropped):
        assert issubclass(cls, e.TransportError)
        assert cls.default_retryable
    for cls in (e.InvalidRequestError, e.TransportError, e.APIStatusError, e.ResponseFormatError):
        assert issubclass(cls, e.YouforceError)
    assert not e.ConnectError.maybe_delivered
    assert e.ReadTimeout.maybe_delivered
    assert not e.InvalidRequestError.default_retryable
    assert "ConnectionDropped" in (e.__doc__ or "")


def test_retryable_can_be_overridden() -> None:
    assert e.ServerError("x", retryable=False).retryable is False
    assert e.BadRequestError("x", retryable=True).retryable is True


def test_nested_error_shape() -> None:
    body = {
        "error": {
            "message": "Person unknown",
            "correlationId": "c-1",
            "issuedAt": "2024-01-01",
            "errorCode": "E404",
        }
    }
    error = error_for_response(_response(404, body, reason="Not Found"))
    assert error.api_message == "Person unknown"
    assert error.correlation_id == "c-1"
    assert error.error_code == "E404"
    assert str(error) == (
        "POST https://api.test/learning/v1.1/x -> 404 Not Found: Person unknown (correlationId=c-1)"
    )


def test_flat_error_shape() -> None:
    body = {"message": "Too big", "correlationId": "c-2", "errorCode": "SIZE", "statusCode": 400}
    error = error_for_response(_response(400, body))
    assert (error.api_message, error.correlation_id, error.error_code) == ("Too big", "c-2", "SIZE")


def test_rfc7807_shape() -> None:
    body = {
        "type": "about:blank",
        "title": "Validation failed",
        "status": 400,
        "detail": "see errors",
        "errors": {"Description": ["required"]},
    }
    error = error_for_response(_response(400, body))
    assert error.api_message == "Validation failed - see errors - Description: required"
    assert error.correlation_id is None


def test_oauth_error_shape() -> None:
    body = {"error": "invalid_client", "error_description": "bad secret"}
    error = error_for_response(_response(401, body))
    assert isinstance(error, e.AuthenticationError)
    assert error.error_code == "invalid_client"
    assert error.api_message == "bad secret"


def test_correlation_id_from_header_and_non_json_body() -> None:
    error = error_for_response(
        _response(502, text="<html>bad\ngateway</html>", headers={"X-Correlation-Id": "hdr-9"})
    )
    assert error.correlation_id == "hdr-9"
    assert error.body == "<html>bad\ngateway</html>"
    assert "\n" not in str(error)


def test_body_is_truncated() -> None:
    error = error_for_response(_response(500, text="x" * 10_000))
    assert error.body is not None
    assert error.body.startswith("x" * e.BODY_LIMIT)
    assert len(error.body) < e.BODY_LIMIT + 50


def test_retry_after_seconds_on_429() -> None:
    error = error_for_response(_response(429, {}, headers={"Retry-After": "17"}))
    assert isinstance(error, e.RateLimitError)
    assert error.retry_after == 17.0


def test_retry_after_absent() -> None:
    assert error_for_response(_response(429, {})).retry_after is None


@pytest.mark.parametrize(
    ("body", "limit"),
    [
        (
            {
                "message": "Spike arrest violation. Allowed rate : 100pm.",
                "errorCode": "policies.ratelimit.SpikeArrestViolation",
            },
            "spike",
        ),
        (
            {"error": {"errorCode": "policies.ratelimit.QuotaViolation", "message": "Quota"}},
            "quota",
        ),
        (
            {"fault": "x", "message": "Concurrent rate limit connection exceeded"},
            "parallel",
        ),
        ({"message": "Too many requests"}, None),
        ({}, None),
    ],
)
def test_a_429_names_the_limit_it_hit(body: dict[str, object], limit: str | None) -> None:
    error = error_for_response(_response(429, body))
    assert isinstance(error, e.RateLimitError)
    assert error.limit == limit


def test_a_429_that_is_not_json_names_no_limit() -> None:
    error = error_for_response(_response(429, text="<html>Too Many Requests</html>"))
    assert isinstance(error, e.RateLimitError)
    assert error.limit is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("120", 120.0),
        (" 2.5 ", 2.5),
        ("-4", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


def test_repr_and_str_are_safe() -> None:
    error = error_for_response(_response(403, {"message": "no scope"}))
    assert "Authorization" not in repr(error)
    assert "403" in repr(error)
    assert "PermissionDeniedError" in repr(error)
