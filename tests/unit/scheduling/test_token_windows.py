"""Delivery windows on SQLite and PostgreSQL: the pacer's grants (`grant_window`,
`take_grant`), the windows tokens open (`open_windows`), the pace that counts pending
grants (`token_pace`), and a token cache that fetches only against a grant."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api_client import AccessToken
from models import TokenCacheEntry
from scheduling.token_cache import DatabaseTokenCache
from scheduling.token_windows import (
    GRANT_SECONDS,
    TokenWindowClosed,
    WindowGrant,
    grant_window,
    open_windows,
    outstanding_grants,
    take_grant,
    token_pace,
)
from tests.plugins.dispatch_fixtures import (
    NOW,
    TENANT,
    Fleet,
    grants,
    make_fleet,
    open_window,
    spend_tokens,
    token_key,
)

OTHER = "1234567"


@pytest.fixture
def fleet(db_engine: Engine, tmp_path: Path) -> Fleet:
    return make_fleet(db_engine, tmp_path / "data")


def grant(fleet: Fleet, tenant: str = TENANT, *, live: bool = False) -> WindowGrant | None:
    return grant_window(
        fleet.engine, fleet.settings, tenant, live=live, now=fleet.now[0], reason="test"
    )


def pace_used(fleet: Fleet) -> int:
    with fleet.engine.connect() as connection:
        return token_pace(connection, fleet.settings, fleet.now[0]).used


def fill_to_the_line(fleet: Fleet) -> None:
    """Spend this month's tokens up to where the pace allows no more (line + burst)."""
    with fleet.engine.connect() as connection:
        pace = token_pace(connection, fleet.settings, fleet.now[0])
    spend_tokens(fleet.engine, int(pace.line + pace.burst) + 1, at=fleet.now[0])


# --- grants -------------------------------------------------------------------------------


def test_a_grant_is_written_when_the_pace_allows(fleet: Fleet) -> None:
    written = grant(fleet)

    assert written == WindowGrant(TENANT, NOW + timedelta(seconds=GRANT_SECONDS))
    row = grants(fleet.engine)[TENANT]
    assert row.granted_at == NOW
    assert row.used_at is None
    assert row.reason == "test"
    with fleet.engine.connect() as connection:
        assert outstanding_grants(connection, NOW) == {TENANT: written.grant_until}


def test_a_tenant_holds_one_grant_at_a_time(fleet: Fleet) -> None:
    assert grant(fleet) is not None
    assert grant(fleet) is None, "the first is not taken yet"
    assert grant(fleet, OTHER) is not None, "another tenant is another window"

    assert take_grant(fleet.engine, TENANT, now=NOW)
    assert grant(fleet) is not None, "taken: the tenant may get the next one"


def test_a_grant_is_taken_once(fleet: Fleet) -> None:
    grant(fleet)

    assert take_grant(fleet.engine, TENANT, now=NOW + timedelta(seconds=5)) is True
    assert take_grant(fleet.engine, TENANT, now=NOW + timedelta(seconds=6)) is False
    assert grants(fleet.engine)[TENANT].used_at == NOW + timedelta(seconds=5)
    assert take_grant(fleet.engine, OTHER, now=NOW) is False, "no grant: nothing to take"


def test_a_grant_not_taken_in_time_lapses(fleet: Fleet) -> None:
    grant(fleet)
    lapsed = NOW + timedelta(seconds=GRANT_SECONDS)

    assert take_grant(fleet.engine, TENANT, now=lapsed) is False
    with fleet.engine.connect() as connection:
        assert outstanding_grants(connection, lapsed) == {}
    fleet.now[0] = lapsed
    assert grant(fleet) is not None, "a lapsed grant is replaced"


def test_pending_grants_count_in_the_pace(fleet: Fleet) -> None:
    spend_tokens(fleet.engine, 3, at=NOW - timedelta(hours=1))
    spend_tokens(fleet.engine, 5, at=NOW - timedelta(days=20))  # February: another window
    assert pace_used(fleet) == 3

    grant(fleet)
    grant(fleet, OTHER)
    assert pace_used(fleet) == 5

    take_grant(fleet.engine, TENANT, now=NOW)  # its request is in the ledger from now on
    assert pace_used(fleet) == 4
    fleet.advance(GRANT_SECONDS)
    assert pace_used(fleet) == 3, "a lapsed grant costs nothing"


def test_no_grant_when_the_pace_says_no(fleet: Fleet) -> None:
    fill_to_the_line(fleet)

    assert grant(fleet) is None
    assert grant(fleet, live=True) is None, "live work waits too, before the last day"
    assert grants(fleet.engine) == {}


def test_grants_stop_at_the_pace_however_many_tenants_wait(fleet: Fleet) -> None:
    with fleet.engine.connect() as connection:
        pace = token_pace(connection, fleet.settings, NOW)
    allowed = int(pace.line + pace.burst)  # under line + burst: allowed
    spend_tokens(fleet.engine, allowed - 2, at=NOW)

    written = [grant(fleet, f"tenant-{n}") for n in range(5)]

    assert [w is not None for w in written] == [True, True, True, False, False]


# --- open windows -------------------------------------------------------------------------


def test_a_token_that_outlives_the_margin_opens_its_tenants_window(fleet: Fleet) -> None:
    margin = fleet.settings.token_refresh_margin
    open_window(fleet.engine, TENANT, expires_at=NOW + timedelta(seconds=margin + 60))
    open_window(fleet.engine, OTHER, expires_at=NOW + timedelta(seconds=margin - 1))

    windows = open_windows(fleet.engine, now=NOW, margin_seconds=margin)

    assert windows == {TENANT: NOW + timedelta(seconds=margin + 60)}


def test_a_row_without_a_token_is_no_window(fleet: Fleet) -> None:
    DatabaseTokenCache(fleet.engine, owner="t", clock=fleet.clock).set_refusal(
        token_key(TENANT), None
    )

    assert open_windows(fleet.engine, now=NOW, margin_seconds=0) == {}


# --- the token cache fetches only against a grant -----------------------------------------


class Fetch:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.calls = 0

    def __call__(self) -> AccessToken:
        self.calls += 1
        return AccessToken(
            "fresh", "Bearer", "Upload_documents", self.fleet.now[0] + timedelta(hours=1)
        )


def cache(fleet: Fleet) -> DatabaseTokenCache:
    return DatabaseTokenCache(
        fleet.engine, owner="worker:1", clock=fleet.clock, wait_timeout=0.5, require_grant=True
    )


def fetching_until(fleet: Fleet) -> object:
    table = TokenCacheEntry.__table__  # type: ignore[attr-defined]
    with fleet.engine.connect() as connection:
        return connection.execute(
            select(table.c.fetching_until).where(table.c.cache_key == token_key(TENANT))
        ).scalar_one()


def test_without_a_grant_the_cache_defers_and_fetches_nothing(fleet: Fleet) -> None:
    fetch = Fetch(fleet)

    with pytest.raises(TokenWindowClosed, match=f"no delivery window for tenant {TENANT}") as info:
        cache(fleet).get_or_fetch(token_key(TENANT), fetch, margin_seconds=300)

    assert fetch.calls == 0
    assert info.value.until == NOW, "a deferral: the job waits for its tenant's window"
    assert fetching_until(fleet) is None, "the fetch lease is given back"


def test_with_a_grant_the_cache_fetches_once_and_takes_the_grant(fleet: Fleet) -> None:
    fetch = Fetch(fleet)
    grant(fleet)

    token = cache(fleet).get_or_fetch(token_key(TENANT), fetch, margin_seconds=300)

    assert token.access_token == "fresh"
    assert fetch.calls == 1
    assert grants(fleet.engine)[TENANT].used_at == NOW
    again = cache(fleet).get_or_fetch(token_key(TENANT), fetch, margin_seconds=300)
    assert again.access_token == "fresh"
    assert fetch.calls == 1, "the window is open: the cached token serves"


def test_a_grant_serves_one_fetch_only(fleet: Fleet) -> None:
    fetch = Fetch(fleet)
    grant(fleet)
    cache(fleet).get_or_fetch(token_key(TENANT), fetch, margin_seconds=300)
    fleet.advance(3600 - 200)  # the token is inside the refresh margin now

    with pytest.raises(TokenWindowClosed):
        cache(fleet).get_or_fetch(token_key(TENANT), fetch, margin_seconds=300)
    assert fetch.calls == 1


def test_a_grant_written_after_a_refusal_is_used_at_once(fleet: Fleet) -> None:
    fetch = Fetch(fleet)
    with pytest.raises(TokenWindowClosed):
        cache(fleet).get_or_fetch(token_key(TENANT), fetch, margin_seconds=300)

    grant(fleet)
    token = cache(fleet).get_or_fetch(token_key(TENANT), fetch, margin_seconds=300)

    assert token.access_token == "fresh"
    assert fetch.calls == 1


def test_a_grant_for_another_tenant_opens_nothing_here(fleet: Fleet) -> None:
    grant(fleet, OTHER)

    with pytest.raises(TokenWindowClosed):
        cache(fleet).get_or_fetch(token_key(TENANT), Fetch(fleet), margin_seconds=300)
    assert grants(fleet.engine)[OTHER].used_at is None


def test_without_require_grant_the_cache_fetches_as_before(fleet: Fleet) -> None:
    fetch = Fetch(fleet)
    plain = DatabaseTokenCache(fleet.engine, owner="tool", clock=fleet.clock)

    assert plain.get_or_fetch(token_key(TENANT), fetch, margin_seconds=300).access_token == "fresh"
    assert fetch.calls == 1
    assert grants(fleet.engine) == {}
