"""The dispatcher's settings: tenant weights parse or are refused naming the entry; the
token budget and its reserve keep a token to pace."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from config import Settings
from config.settings import parse_tenant_weights


def settings(tmp_path: Path, **fields: object) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None, **fields)  # type: ignore[arg-type]


def test_tenant_weights_parse_into_a_map(tmp_path: Path) -> None:
    assert parse_tenant_weights("4028868:2, 1234:0.5,") == {"4028868": 2.0, "1234": 0.5}
    assert settings(tmp_path).tenant_weight_map == {}
    assert settings(tmp_path, tenant_weights="9:3").tenant_weight_map == {"9": 3.0}


@pytest.mark.parametrize("entry", ["4028868", "4028868:0", "4028868:-1", ":2", "x:heavy"])
def test_a_bad_tenant_weight_is_refused_naming_the_entry(tmp_path: Path, entry: str) -> None:
    with pytest.raises(ValidationError, match=f"YFDOCS_TENANT_WEIGHTS entry '{entry}'"):
        settings(tmp_path, tenant_weights=f"1:1,{entry}")


def test_the_token_budget_keeps_a_token_to_pace(tmp_path: Path) -> None:
    assert settings(tmp_path, token_monthly_budget=2).token_monthly_budget == 2
    with pytest.raises(ValidationError, match="token_monthly_budget"):
        settings(tmp_path, token_monthly_budget=1)
    with pytest.raises(ValidationError, match="token_reserve"):
        settings(tmp_path, token_reserve=1.0)


def test_the_dispatcher_defaults(tmp_path: Path) -> None:
    defaults = settings(tmp_path)
    assert defaults.token_reserve == 0.1
    assert defaults.token_budget_window is None, "the calendar month"
    assert defaults.dispatch_interval == 1.0
    assert defaults.dispatch_ready_factor == 2.0
