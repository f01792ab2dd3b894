"""The database token cache on SQLite: one fetch for many threads, reuse, invalidate, and
refused credentials remembered for the whole fleet."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api_client import (
    AccessToken,
    CredentialsRejectedError,
    Timeouts,
    TokenProvider,
    TokenRefusal,
    UnlimitedGovernor,
)
from models import make_engine, migrate, utcnow
from scheduling import call_context
from scheduling.call_context import WorkerStopping
from scheduling.deferrals import CallDeferred
from scheduling.token_cache import DatabaseTokenCache, TokenWaitTimeout
from tests.unit.api_client.fakes import (
    CLIENT_ID,
    SECRET,
    TOKEN_URL,
    FakeTransport,
    make_response,
)

KEY = "https://connect.example/token|client|4028868"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'tokens.sqlite3'}")
    migrate(engine)
    yield engine
    engine.dispose()


def token(value: str = "secret-token", lifetime: float = 3600) -> AccessToken:
    return AccessToken(
        access_token=value,
        token_type="Bearer",
        scope="Upload_documents",
        expires_at=utcnow() + timedelta(seconds=lifetime),
    )


class CountingFetch:
    def __init__(self, delay: float = 0.0, value: str = "secret-token") -> None:
        self.calls = 0
        self.delay = delay
        self.value = value
        self._lock = threading.Lock()

    def __call__(self) -> AccessToken:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return token(self.value)


def test_fetches_once_then_serves_from_the_table(engine: Engine) -> None:
    cache = DatabaseTokenCache(engine, owner="test")
    fetch = CountingFetch()
    first = cache.get_or_fetch(KEY, fetch, margin_seconds=300)
    second = DatabaseTokenCache(engine, owner="other").get_or_fetch(KEY, fetch, 300)
    assert fetch.calls == 1
    assert first.access_token == second.access_token == "secret-token"
    assert second.expires_at.tzinfo is not None
    assert second.scope == "Upload_documents"


def test_many_threads_fetch_exactly_once(engine: Engine) -> None:
    fetch = CountingFetch(delay=0.3)
    barrier = threading.Barrier(8)
    tokens: list[str] = []

    def use() -> None:
        cache = DatabaseTokenCache(engine, owner=threading.current_thread().name)
        barrier.wait()
        tokens.append(cache.get_or_fetch(KEY, fetch, margin_seconds=300).access_token)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fetch.calls == 1
    assert tokens == ["secret-token"] * 8


def test_token_inside_the_margin_is_refetched(engine: Engine) -> None:
    cache = DatabaseTokenCache(engine, owner="t")
    cache.get_or_fetch(KEY, lambda: token("old", lifetime=100), margin_seconds=0)
    fresh = cache.get_or_fetch(KEY, CountingFetch(value="new"), margin_seconds=300)
    assert fresh.access_token == "new"


def test_invalidate_only_drops_the_named_token(engine: Engine) -> None:
    cache = DatabaseTokenCache(engine, owner="t")
    cache.get_or_fetch(KEY, lambda: token("current"), margin_seconds=300)
    cache.invalidate(KEY, "some-older-token")
    assert cache.get_or_fetch(KEY, CountingFetch(value="x"), 300).access_token == "current"
    cache.invalidate(KEY, "current")
    assert cache.get_or_fetch(KEY, CountingFetch(value="next"), 300).access_token == "next"


def test_failed_fetch_releases_the_lease(engine: Engine) -> None:
    cache = DatabaseTokenCache(engine, owner="t", wait_timeout=2)

    def broken() -> AccessToken:
        raise RuntimeError("token endpoint down")

    with pytest.raises(RuntimeError, match="token endpoint down"):
        cache.get_or_fetch(KEY, broken, 300)
    started = time.monotonic()
    assert cache.get_or_fetch(KEY, CountingFetch(value="ok"), 300).access_token == "ok"
    assert time.monotonic() - started < 1  # no waiting on a dead lease


def test_a_dead_fetchers_lease_lapses(engine: Engine) -> None:
    DatabaseTokenCache(engine, owner="t").get_or_fetch(KEY, lambda: token("x"), 300)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE token_cache SET access_token = NULL, fetcher = 'dead', "
                "fetching_until = :until"
            ),
            {"until": (utcnow() + timedelta(seconds=0.5)).replace(tzinfo=None)},
        )
    cache = DatabaseTokenCache(engine, owner="t", poll_interval=0.02, wait_timeout=5)
    started = time.monotonic()
    assert cache.get_or_fetch(KEY, CountingFetch(value="after"), 300).access_token == "after"
    assert 0.3 < time.monotonic() - started < 3


def test_waiting_is_bounded(engine: Engine) -> None:
    DatabaseTokenCache(engine, owner="t").get_or_fetch(KEY, lambda: token("x"), 300)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE token_cache SET access_token = NULL, fetching_until = :until"),
            {"until": (utcnow() + timedelta(hours=1)).replace(tzinfo=None)},
        )
    cache = DatabaseTokenCache(engine, owner="t", poll_interval=0.02, wait_timeout=0.3)
    with pytest.raises(TokenWaitTimeout):
        cache.get_or_fetch(KEY, CountingFetch(), 300)


def _fetch_held_by_another(engine: Engine) -> None:
    DatabaseTokenCache(engine, owner="t").get_or_fetch(KEY, lambda: token("x"), 300)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE token_cache SET access_token = NULL, fetching_until = :until"),
            {"until": (utcnow() + timedelta(hours=1)).replace(tzinfo=None)},
        )


def test_a_wait_for_another_fetch_ends_at_the_steps_last_moment_to_call(engine: Engine) -> None:
    _fetch_held_by_another(engine)
    cache = DatabaseTokenCache(engine, owner="t", poll_interval=0.02, wait_timeout=60)
    start_by = utcnow() + timedelta(seconds=0.2)
    with (
        call_context.calls_for("job-1", start_by=start_by),
        pytest.raises(TokenWaitTimeout) as raised,
    ):
        cache.get_or_fetch(KEY, CountingFetch(), 300)
    assert "waited 0s" in raised.value.reason, "the step's 0.2 s, not the cache's 60 s"
    assert isinstance(raised.value, CallDeferred), "a deferral: the job waits, no attempt"


def test_a_stopping_process_stops_waiting_for_a_token(engine: Engine) -> None:
    _fetch_held_by_another(engine)
    cache = DatabaseTokenCache(engine, owner="t", poll_interval=0.02, wait_timeout=60)
    call_context.stopping.set()
    try:
        with pytest.raises(WorkerStopping):
            cache.get_or_fetch(KEY, CountingFetch(), 300)
    finally:
        call_context.stopping.clear()


def test_the_token_never_shows_in_repr_or_logs(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    cache = DatabaseTokenCache(engine, owner="t")
    got = cache.get_or_fetch(KEY, lambda: token("very-secret-value"), 300)
    cache.invalidate(KEY, "very-secret-value")
    assert "very-secret-value" not in repr(got)
    assert "very-secret-value" not in repr(cache)
    assert "very-secret-value" not in caplog.text
    assert caplog.records  # something was logged, just not the token


def test_a_refusal_is_kept_for_the_fleet_and_forgotten_on_request(engine: Engine) -> None:
    cache = DatabaseTokenCache(engine, owner="test")
    at = utcnow().replace(microsecond=0)
    refusal = TokenRefusal("wrong secret", at, at + timedelta(seconds=900), "f1ngerprint", 2)

    assert cache.refusal(KEY) is None
    cache.set_refusal(KEY, refusal)
    seen = DatabaseTokenCache(engine, owner="other").refusal(KEY)
    cache.set_refusal(KEY, None)

    assert seen == refusal
    assert cache.refusal(KEY) is None


def test_threads_meeting_refused_credentials_make_one_token_request(engine: Engine) -> None:
    transport = FakeTransport()
    for _ in range(8):
        transport.token_answers.append(
            lambda request: make_response(request, 401, {"error": "invalid_client"})
        )
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def use() -> None:
        with requests.Session() as session:
            session.mount("https://", transport)
            provider = TokenProvider(
                TOKEN_URL,
                CLIENT_ID,
                SECRET,
                cache=DatabaseTokenCache(engine, owner=threading.current_thread().name),
                session=session,
                timeouts=Timeouts(2, 3),
                governor=UnlimitedGovernor(),
            )
            barrier.wait()
            try:
                provider.token("4028868")
            except CredentialsRejectedError as exc:
                outcomes.append("remembered" if exc.from_memory else "asked")

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(transport.calls) == 1
    assert sorted(outcomes) == ["asked"] + ["remembered"] * 7
