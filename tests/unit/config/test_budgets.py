"""The time budgets: derived from the lease and the timeouts, nested by construction, and a
combination that leaves no time for a call refused at start with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from config import Settings
from config.budgets import MIN_CALL_WINDOW_SECONDS, time_budgets


def settings(tmp_path: Path, **values: float) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None, **values)  # type: ignore[call-arg, arg-type]


@given(
    lease=st.floats(min_value=1, max_value=10_000),
    connect=st.floats(min_value=0.1, max_value=120),
    read=st.floats(min_value=0.1, max_value=600),
)
def test_the_budgets_nest_whenever_they_are_accepted(
    lease: float, connect: float, read: float
) -> None:
    try:
        budgets = time_budgets(lease_seconds=lease, connect_timeout=connect, read_timeout=read)
    except ValueError:
        assert lease * 0.8 - (connect + read) - 1 < MIN_CALL_WINDOW_SECONDS
        return
    assert budgets.call == pytest.approx(connect + read)
    # The last call that may start ends before the soft limit, which comes before the hard
    # limit, which comes before the lease ends: the sweeper never takes back a live step.
    assert budgets.last_call_start + budgets.call < budgets.soft_time_limit
    assert budgets.soft_time_limit < budgets.hard_time_limit < budgets.lease
    assert budgets.last_call_start >= MIN_CALL_WINDOW_SECONDS
    # A slot wait never outlasts the step's time for calls, and the token fetch lease covers
    # the longest slot wait plus one call: no second fetch while the first is on its way.
    assert budgets.slot_wait <= budgets.last_call_start
    assert budgets.token_fetch_lease > budgets.slot_wait + budgets.call


def test_the_defaults_give_a_fetch_lease_longer_than_the_worst_fetch(tmp_path: Path) -> None:
    budgets = settings(tmp_path).time_budgets
    assert budgets.token_fetch_lease >= budgets.slot_wait + 5 + 60  # connect + read
    assert budgets.soft_time_limit == 96
    assert budgets.hard_time_limit == 108


@pytest.mark.parametrize(
    ("lease", "connect", "read"),
    [
        pytest.param(84.0, 5.0, 60.0, id="lease-too-short"),
        pytest.param(10.0, 5.0, 60.0, id="far-too-short"),
        pytest.param(120.0, 5.0, 200.0, id="read-timeout-too-long"),
    ],
)
def test_a_lease_that_leaves_no_time_for_a_call_is_refused_with_one_line(
    tmp_path: Path, lease: float, connect: float, read: float
) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(tmp_path, lease_seconds=lease, connect_timeout=connect, read_timeout=read)
    [error] = caught.value.errors()
    message = str(error["msg"])
    assert "\n" not in message
    assert f"YFDOCS_LEASE_SECONDS={lease:g} is too short" in message
    assert "YFDOCS_READ_TIMEOUT" in message
    assert "use a lease of at least" in message


def test_a_lease_just_long_enough_is_accepted(tmp_path: Path) -> None:
    # (5 + 60 + 1 + 2) / 0.8 = 85 s
    assert settings(tmp_path, lease_seconds=85.5).time_budgets.last_call_start >= 2
    with pytest.raises(ValidationError):
        settings(tmp_path, lease_seconds=84.5)


def test_the_rule_reads_the_environment_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YFDOCS_READ_TIMEOUT", "200")
    with pytest.raises(ValidationError, match="YFDOCS_LEASE_SECONDS=120 is too short"):
        settings(tmp_path)


def test_database_and_broker_urls_never_show_their_password(tmp_path: Path) -> None:
    secret_settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path,
        _env_file=None,
        database_url="postgresql+psycopg://yfdocs:hunter2-db@db/yfdocs",
        broker_url="amqp://yfdocs:hunter2-mq@mq//",
    )
    shown = repr(secret_settings) + str(secret_settings) + str(secret_settings.model_dump())
    assert "hunter2" not in shown
    assert secret_settings.resolved_database_url.endswith("hunter2-db@db/yfdocs")
    assert secret_settings.resolved_broker_url == "amqp://yfdocs:hunter2-mq@mq//"


@pytest.mark.parametrize(
    ("name", "url"),
    [
        pytest.param("api_url", "http://api.youforce.com", id="api-over-http"),
        pytest.param("token_url", "http://connect.visma.com/connect/token", id="token-over-http"),
        pytest.param("api_url", "http://10.0.0.5:8080", id="private-address-over-http"),
    ],
)
def test_plain_http_to_a_host_that_is_not_loopback_is_refused_at_start(
    tmp_path: Path, name: str, url: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(data_dir=tmp_path, _env_file=None, **{name: url})  # type: ignore[call-arg, arg-type]
    [error] = caught.value.errors()
    message = str(error["msg"])
    assert "\n" not in message
    assert f"YFDOCS_{name.upper()}" in message
    assert "plain http://" in message


def test_loopback_and_named_sandbox_hosts_may_use_plain_http(tmp_path: Path) -> None:
    Settings(data_dir=tmp_path, _env_file=None, api_url="http://127.0.0.1:8765")  # type: ignore[call-arg]
    Settings(  # type: ignore[call-arg]
        data_dir=tmp_path,
        _env_file=None,
        api_url="http://sandbox:8765",
        token_url="http://sandbox:8765/connect/token",
        plain_http_hosts="sandbox",
    )
    with pytest.raises(ValidationError, match="plain http://"):
        Settings(  # type: ignore[call-arg]
            data_dir=tmp_path,
            _env_file=None,
            api_url="http://api.youforce.com",
            plain_http_hosts="api.youforce.com",  # the vendor's hosts never
        )
