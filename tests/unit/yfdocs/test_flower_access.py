"""Flower's credentials: the configured password, or one generated once, kept private."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from config import Settings
from worker.flower_auth import credentials_accepted
from yfdocs.flower_access import PASSWORD_FILE_NAME, FlowerAccessError, flower_credentials


def settings(tmp_path: Path, **fields: object) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None, **fields)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_flower_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("YFDOCS_FLOWER_PASSWORD", "YFDOCS_FLOWER_USER"):
        monkeypatch.delenv(name, raising=False)


def test_a_configured_password_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    credentials = flower_credentials(settings(tmp_path, flower_password=SecretStr("s3cret")))

    assert (credentials.user, credentials.password) == ("admin", "s3cret")
    assert credentials.generated_in is None
    assert not (tmp_path / PASSWORD_FILE_NAME).exists()
    assert "s3cret" not in repr(credentials)


def test_without_a_password_one_is_generated_once_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    first = flower_credentials(settings(tmp_path))
    second = flower_credentials(settings(tmp_path, flower_password=SecretStr("")))

    path = tmp_path / PASSWORD_FILE_NAME
    assert first.generated_in == second.generated_in == path
    assert first.password == second.password, "kept, not made anew on every start"
    assert len(first.password) >= 24
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first.password


def test_a_password_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / PASSWORD_FILE_NAME
    path.write_text("readable\n")
    path.chmod(0o644)

    with pytest.raises(FlowerAccessError, match="may be read by others"):
        flower_credentials(settings(tmp_path))


def test_values_flower_would_split_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FlowerAccessError, match="','"):
        flower_credentials(settings(tmp_path, flower_password=SecretStr("a,b")))
    with pytest.raises(FlowerAccessError, match="YFDOCS_FLOWER_USER"):
        flower_credentials(settings(tmp_path, flower_user="ad:min"))


def test_the_header_carries_exactly_the_pair_flower_accepts(tmp_path: Path) -> None:
    credentials = flower_credentials(settings(tmp_path))
    pairs = [credentials.basic_auth_option]

    assert credentials_accepted(credentials.authorization_header, pairs)
    wrong = "Basic " + base64.b64encode(b"admin:wrong").decode()
    for header in (None, "", "Basic", "Bearer x", "Basic !!notbase64", wrong):
        assert not credentials_accepted(header, pairs), header
    assert not credentials_accepted(credentials.authorization_header, []), "none configured"
