"""Token provider and cache: the request, the answer forms, margin refresh, no stampede."""

from __future__ import annotations

import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta

import pytest
import requests

from api_client import (
    AccessToken,
    AuthenticationError,
    BadRequestError,
    ConnectError,
    CredentialsRejectedError,
    InMemoryTokenCache,
    ResponseFormatError,
    Timeouts,
    TokenProvider,
    UnlimitedGovernor,
)
from api_client.tokens import token_cache_key

from .fakes import CLIENT_ID, SECRET, TENANT, TOKEN_URL, FakeTransport, make_response

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _provider(
    session: requests.Session, clock: Clock | None = None, margin: float = 300
) -> TokenProvider:
    clock = clock or Clock()
    return TokenProvider(
        TOKEN_URL,
        CLIENT_ID,
        SECRET,
        cache=InMemoryTokenCache(clock),
        session=session,
        timeouts=Timeouts(2, 3),
        governor=UnlimitedGovernor(),
        margin_seconds=margin,
        clock=clock,
    )


def _answer(body: object, status: int = 200):  # type: ignore[no-untyped-def]
    return lambda request: make_response(request, status, body)


def test_request_is_exactly_as_documented(
    session: requests.Session, transport: FakeTransport
) -> None:
    token = _provider(session).token(TENANT)
    (call,) = transport.calls
    assert call.method == "POST"
    assert call.url == TOKEN_URL
    assert call.headers["Cache-Control"] == "no-cache"
    assert call.headers["Accept"] == "application/json"
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(call.body.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [SECRET],
        "tenant_id": [TENANT],
    }
    assert call.timeout == (2.0, 3.0)
    assert token.access_token == "tok-1"
    assert token.expires_at == T0 + timedelta(seconds=3600)


@pytest.mark.parametrize(
    ("expires_in", "token_type", "seconds"),
    [(3600, "Bearer", 3600), ("7200", "BearerToken", 7200), (59.5, "bearer", 59.5)],
)
def test_answer_forms(
    session: requests.Session,
    transport: FakeTransport,
    expires_in: object,
    token_type: str,
    seconds: float,
) -> None:
    transport.token_answers.append(
        _answer({"access_token": "abc", "expires_in": expires_in, "token_type": token_type})
    )
    token = _provider(session, margin=0).token(TENANT)
    assert token.expires_at == T0 + timedelta(seconds=seconds)
    assert token.token_type == token_type
    assert token.scope == ""


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": "LEAKME", "expires_in": "soon", "token_type": "Bearer"},
        {"access_token": "LEAKME", "expires_in": 3600, "token_type": "MAC"},
        {"access_token": "", "expires_in": 3600, "token_type": "Bearer"},
        {"access_token": "LEAKME", "expires_in": -5, "token_type": "Bearer"},
        ["LEAKME"],
    ],
)
def test_malformed_answers_never_keep_the_token(
    session: requests.Session, transport: FakeTransport, body: object
) -> None:
    transport.token_answers.append(_answer(body))
    with pytest.raises(ResponseFormatError) as info:
        _provider(session).token(TENANT)
    error = info.value
    for text in (str(error), repr(error), error.body or ""):
        assert "LEAKME" not in text
        assert SECRET not in text


def test_invalid_client_is_authentication_error(
    session: requests.Session, transport: FakeTransport
) -> None:
    transport.token_answers.append(
        _answer({"error": "invalid_client", "error_description": "unknown client"}, 401)
    )
    with pytest.raises(AuthenticationError) as info:
        _provider(session).token(TENANT)
    assert info.value.error_code == "invalid_client"
    assert info.value.retryable is False
    assert SECRET not in str(info.value) + repr(info.value) + (info.value.body or "")
    assert len(transport.calls) == 1


def test_transport_failure_does_not_chain_the_request(
    session: requests.Session, transport: FakeTransport
) -> None:
    import urllib3.exceptions

    reason = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    transport.token_answers.append(
        requests.ConnectionError(
            urllib3.exceptions.MaxRetryError(None, TOKEN_URL, reason),  # type: ignore[arg-type]
            request=requests.Request("POST", TOKEN_URL, data={"client_secret": SECRET}).prepare(),
        )
    )
    with pytest.raises(ConnectError) as info:
        _provider(session).token(TENANT)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert info.value.cause is not None
    assert info.value.cause.startswith("requests.exceptions.ConnectionError: ")
    assert SECRET not in info.value.cause


def test_reuse_and_margin_refresh(session: requests.Session, transport: FakeTransport) -> None:
    clock = Clock()
    provider = _provider(session, clock, margin=300)
    first = provider.token(TENANT)
    clock.now = T0 + timedelta(seconds=3299)
    assert provider.token(TENANT) is first
    clock.now = T0 + timedelta(seconds=3300)
    second = provider.token(TENANT)
    assert second.access_token == "tok-2"
    assert len(transport.calls) == 2


def test_tenants_have_their_own_tokens(session: requests.Session, transport: FakeTransport) -> None:
    provider = _provider(session)
    assert provider.token("1").access_token != provider.token("2").access_token
    assert provider.token("1").access_token == "tok-1"
    assert len(transport.calls) == 2


def test_short_lifetime_does_not_refetch_every_call(
    session: requests.Session, transport: FakeTransport
) -> None:
    transport.token_answers.append(
        _answer({"access_token": "short", "expires_in": 60, "token_type": "Bearer"})
    )
    provider = _provider(session, margin=300)
    for _ in range(5):
        assert provider.token(TENANT).access_token == "short"
    assert len(transport.calls) == 1


def test_invalidate_only_drops_the_same_token(
    session: requests.Session, transport: FakeTransport
) -> None:
    provider = _provider(session)
    old = provider.token(TENANT)
    provider.invalidate(TENANT, old)
    new = provider.token(TENANT)
    assert new.access_token == "tok-2"
    provider.invalidate(TENANT, old)  # a late 401 for the old token must not drop the new one
    assert provider.token(TENANT) is new
    assert len(transport.calls) == 2


def test_cache_key_never_holds_the_secret(session: requests.Session) -> None:
    provider = _provider(session)
    key = provider.cache_key(TENANT)
    assert key == token_cache_key(TOKEN_URL, CLIENT_ID, TENANT)
    assert SECRET not in key
    assert TENANT in key
    assert SECRET not in repr(provider)


def test_concurrent_callers_fetch_once() -> None:
    cache = InMemoryTokenCache()
    fetches = 0
    start = threading.Barrier(16)

    def fetch() -> AccessToken:
        nonlocal fetches
        fetches += 1
        time.sleep(0.05)
        return AccessToken("t", "Bearer", "", datetime.now(UTC) + timedelta(hours=1))

    results: list[AccessToken] = []

    def worker() -> None:
        start.wait()
        results.append(cache.get_or_fetch("k", fetch, 300))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fetches == 1
    assert len(results) == 16
    assert all(r is results[0] for r in results)


def test_token_never_in_repr_or_str() -> None:
    token = AccessToken("VERY-SECRET-TOKEN", "Bearer", "s", T0)
    assert "VERY-SECRET-TOKEN" not in repr(token)
    assert "VERY-SECRET-TOKEN" not in str(token)
    assert token.expires_within(0, now=T0)
    assert not token.expires_within(10, now=T0 - timedelta(seconds=11))
    with pytest.raises(ValueError, match="aware"):
        AccessToken("x", "Bearer", "", datetime(2026, 1, 1))


def _refusing(transport: FakeTransport, times: int, status: int = 401) -> None:
    for _ in range(times):
        transport.token_answers.append(
            _answer({"error": "invalid_client", "error_description": "wrong secret"}, status)
        )


def _provider_on(
    session: requests.Session, cache: InMemoryTokenCache, clock: Clock, secret: str = SECRET
) -> TokenProvider:
    return TokenProvider(
        TOKEN_URL,
        CLIENT_ID,
        secret,
        cache=cache,
        session=session,
        timeouts=Timeouts(2, 3),
        governor=UnlimitedGovernor(),
        clock=clock,
        refusal_wait=900,
        refusal_wait_cap=3000,
    )


def test_refused_credentials_are_not_tried_again_before_the_wait(
    session: requests.Session, transport: FakeTransport
) -> None:
    clock = Clock()
    cache = InMemoryTokenCache(clock)
    provider = _provider_on(session, cache, clock)
    _refusing(transport, 1)

    with pytest.raises(CredentialsRejectedError) as first:
        provider.token(TENANT)
    clock.now += timedelta(seconds=899)
    with pytest.raises(CredentialsRejectedError) as remembered:
        _provider_on(session, cache, clock).token(TENANT)  # another process, same cache

    assert len(transport.calls) == 1, "the second refusal came from memory"
    assert first.value.retry_at == T0 + timedelta(seconds=900)
    assert first.value.from_memory is False
    assert remembered.value.from_memory is True
    assert remembered.value.retry_at == T0 + timedelta(seconds=900)
    assert "wrong secret" in str(remembered.value)
    refusal = cache.refusal(provider.cache_key(TENANT))
    assert refusal is not None
    assert SECRET not in repr(refusal)


def test_each_refusal_doubles_the_wait_up_to_the_cap(
    session: requests.Session, transport: FakeTransport
) -> None:
    clock = Clock()
    provider = _provider_on(session, InMemoryTokenCache(clock), clock)
    _refusing(transport, 4)
    waits = []
    for _ in range(4):
        with pytest.raises(CredentialsRejectedError) as refused:
            provider.token(TENANT)
        assert refused.value.retry_at is not None
        waits.append((refused.value.retry_at - clock.now).total_seconds())
        clock.now = refused.value.retry_at

    assert waits == [900, 1800, 3000, 3000]
    assert len(transport.calls) == 4


def test_new_credentials_are_tried_at_once_and_a_token_clears_the_refusal(
    session: requests.Session, transport: FakeTransport
) -> None:
    clock = Clock()
    cache = InMemoryTokenCache(clock)
    _refusing(transport, 1)
    with pytest.raises(CredentialsRejectedError):
        _provider_on(session, cache, clock, secret="old-secret").token(TENANT)

    fixed = _provider_on(session, cache, clock)
    token = fixed.token(TENANT)

    assert token.access_token == "tok-1"
    assert len(transport.calls) == 2
    assert cache.refusal(fixed.cache_key(TENANT)) is None


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": "invalid_client"}),
        (403, {"error": "access_denied"}),
        (400, {"error": "unauthorized_client", "error_description": "tenant not linked"}),
    ],
)
def test_what_counts_as_a_refusal_of_the_credentials(
    session: requests.Session, transport: FakeTransport, status: int, body: dict[str, str]
) -> None:
    transport.token_answers.append(_answer(body, status))
    with pytest.raises(CredentialsRejectedError) as info:
        _provider(session).token(TENANT)
    assert info.value.status_code == status
    assert isinstance(info.value, AuthenticationError)


def test_a_malformed_token_request_is_not_a_refusal_of_the_credentials(
    session: requests.Session, transport: FakeTransport
) -> None:
    clock = Clock()
    cache = InMemoryTokenCache(clock)
    transport.token_answers.append(_answer({"error": "invalid_request"}, 400))
    with pytest.raises(BadRequestError) as info:
        _provider_on(session, cache, clock).token(TENANT)
    assert not isinstance(info.value, CredentialsRejectedError)
    assert cache.refusal(token_cache_key(TOKEN_URL, CLIENT_ID, TENANT)) is None
