"""The one logging setup: text or JSON lines, with secrets and token shapes masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from config import Settings
from monitoring.logs import SecretMask, configure_logging, secrets_of


@pytest.fixture
def restored_root() -> Iterator[None]:
    """configure_logging changes the root logger: give the test runner its own back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def settings(tmp_path: Path, **fields: object) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None, **fields)  # type: ignore[arg-type]


SECRETFUL = {
    "client_secret": SecretStr("the-client-secret"),
    "flower_password": SecretStr("flower-pass-1"),
    "metrics_token": SecretStr("metrics-token-1"),
    "database_url": SecretStr("postgresql+psycopg://yfdocs:db-pass-1@db:5432/yfdocs"),
    "broker_url": SecretStr("amqp://yfdocs:mq-pass-1@rabbitmq:5672//"),
}


def test_every_configured_secret_is_known_to_the_mask(tmp_path: Path) -> None:
    found = secrets_of(settings(tmp_path, **SECRETFUL))

    for value in ("the-client-secret", "flower-pass-1", "metrics-token-1"):
        assert value in found
    assert {"db-pass-1", "mq-pass-1"} <= set(found)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Authorization: Bearer eyJhbGciOi.x-y_z", "Authorization: Bearer ***"),
        ('{"access_token": "abc.def", "expires_in": 3600}', '{"access_token": "***", '),
        ("grant_type=client_credentials&client_secret=s3&x=1", "client_secret=***&x=1"),
        ("the secret is sandbox-secret!", "the secret is ***!"),
    ],
)
def test_the_mask_hides_secrets_and_token_shapes(text: str, masked: str) -> None:
    assert masked in SecretMask(["sandbox-secret"])(text)


def test_text_lines_by_default(tmp_path: Path, restored_root: None) -> None:
    stream = io.StringIO()
    configure_logging(settings(tmp_path, **SECRETFUL), "INFO", stream=stream)

    logging.getLogger("yfdocs.test").info("token fetched with %s", "the-client-secret")

    line = stream.getvalue().strip()
    assert line.endswith("INFO [MainProcess] yfdocs.test: token fetched with ***")
    assert "the-client-secret" not in line


def test_json_lines_carry_a_records_job_fields(tmp_path: Path, restored_root: None) -> None:
    stream = io.StringIO()
    configure_logging(settings(tmp_path, log_format="json"), "INFO", stream=stream)

    logging.getLogger("yfdocs.jobs").info(
        "job j-1 queued -> uploading",
        extra={"job_id": "j-1", "tenant": "4028868", "state": "uploading", "attempt": 1},
    )
    try:
        raise ValueError("Bearer abc.def")
    except ValueError:
        logging.getLogger("yfdocs.test").exception("it broke")

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "job j-1 queued -> uploading"
    assert (first["job_id"], first["tenant"], first["state"], first["attempt"]) == (
        "j-1",
        "4028868",
        "uploading",
        1,
    )
    assert first["level"] == "INFO"
    assert first["logger"] == "yfdocs.jobs"
    assert first["time"].endswith("+00:00")
    assert "correlation_id" not in first, "a field the record lacks is left out"
    assert "ValueError: Bearer ***" in second["exception"]


def test_configuring_again_replaces_the_handler(tmp_path: Path, restored_root: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(settings(tmp_path), "INFO", stream=first)
    configure_logging(settings(tmp_path), "INFO", stream=second)

    logging.getLogger("yfdocs.test").warning("once")

    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1
