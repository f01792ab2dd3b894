"""YFDOCS_DOCUMENT_STORE: three spellings, a default that follows the database, and a value
that cannot work refused at start with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from config import Settings, StoreLocation

PG_URL = "postgresql+psycopg://yfdocs:hunter2@db/yfdocs"


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("text", "location"),
    [
        ("filesystem", StoreLocation("filesystem")),
        ("postgres", StoreLocation("postgres")),
        ("s3://yfdocs-pdfs", StoreLocation("s3", "yfdocs-pdfs", "")),
        ("s3://yfdocs-pdfs/", StoreLocation("s3", "yfdocs-pdfs", "")),
        ("s3://yfdocs.pdfs/prod/documents/", StoreLocation("s3", "yfdocs.pdfs", "prod/documents")),
    ],
)
def test_each_spelling_names_one_store_and_prints_back(text: str, location: StoreLocation) -> None:
    assert StoreLocation.parse(text) == location
    assert StoreLocation.parse(str(location)) == location


def test_the_default_follows_the_database(tmp_path: Path) -> None:
    assert str(settings(tmp_path).document_store_location) == "filesystem"
    assert str(settings(tmp_path, database_url=PG_URL).document_store_location) == "postgres"
    chosen = settings(tmp_path, database_url=PG_URL, document_store="s3://bucket-a/p")
    assert str(chosen.document_store_location) == "s3://bucket-a/p"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param({"document_store": "nfs"}, "use filesystem, postgres or s3://", id="unknown"),
        pytest.param({"document_store": "s3://A_b"}, "not an S3 bucket name", id="bucket"),
        pytest.param({"document_store": "s3://bucket-a/../x"}, "prefix", id="prefix"),
        pytest.param({"document_store": "postgres"}, "must then be PostgreSQL", id="on-sqlite"),
        pytest.param(
            {"document_store": "postgres", "database_url": PG_URL, "max_file_bytes": 8_000_000},
            "YFDOCS_MAX_FILE_BYTES=8000000 is more than the postgres document store holds",
            id="too-large",
        ),
    ],
)
def test_a_store_that_cannot_work_is_refused_with_one_line(
    tmp_path: Path, values: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(tmp_path, **values)
    [error] = caught.value.errors()
    message = str(error["msg"])
    assert "\n" not in message
    assert expected in message
    assert "hunter2" not in message


def test_the_environment_names_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YFDOCS_DOCUMENT_STORE", "s3://from-env/prefix")
    assert settings(tmp_path).document_store_location == StoreLocation("s3", "from-env", "prefix")
