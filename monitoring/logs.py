"""One logging setup for every yfdocs process: plain text, or JSON lines on request.

Every `yfdocs` command calls `configure_logging` at its entry point, and the worker hands
Celery's own logging to it (`worker.logging_hooks`), so the worker's main process, its
pool children (which inherit the handler when they fork) and the embedded beat all write
the same format. `YFDOCS_LOG_FORMAT=json` gives one JSON object a line, with the fields a
log pipeline filters on: `time` (UTC, ISO 8601), `level`, `logger`, `process`, `pid`,
`message`, `exception`, and whatever context a record carries (`job_id`, `tenant`,
`state`, `from_state`, `attempt`, `correlation_id`, `http_status`: the job's line for
each change of state, written by `models.history`).

Nothing secret is logged on purpose; as a second line of defence every line is masked
before it is written: the configured secrets (the client secret, Flower's password, the
metrics token, the passwords in the database and broker URLs) and anything shaped like a
bearer token or an OAuth token field become `***`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from config import Settings

__all__ = [
    "CONTEXT_FIELDS",
    "JsonLinesFormatter",
    "SecretMask",
    "TextFormatter",
    "configure_logging",
    "secrets_of",
]

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s"
# Context a record may carry (`logging`'s `extra=`), written as fields of a JSON line.
CONTEXT_FIELDS = (
    "job_id",
    "tenant",
    "state",
    "from_state",
    "attempt",
    "correlation_id",
    "http_status",
)
MASK = "***"
_TOKEN_SHAPES = (
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(\"?(?:access_token|refresh_token|id_token)\"?\s*[:=]\s*\"?)[^\"\s,&}]+"),
    re.compile(r"(?i)(\bclient_secret=)[^&\s]+"),
)
_HANDLER_NAME = "yfdocs"


class SecretMask:
    """Replaces known secrets, and anything shaped like a token, with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so that a secret containing another is masked whole.
        self._secrets = sorted({value for value in secrets if len(value) >= 4}, key=len)[::-1]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for shape in _TOKEN_SHAPES:
            text = shape.sub(lambda found: found.group(1) + MASK, text)
        return text


class TextFormatter(logging.Formatter):
    """`time LEVEL [process] logger: message`, masked."""

    def __init__(self, mask: SecretMask) -> None:
        super().__init__(TEXT_FORMAT)
        self._mask = mask

    def format(self, record: logging.LogRecord) -> str:
        return self._mask(super().format(record))


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record, on one line, masked field by field."""

    def __init__(self, mask: SecretMask) -> None:
        super().__init__()
        self._mask = mask

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "pid": record.process,
            "message": self._mask(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = self._mask(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exception"] = self._mask(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = self._mask(record.exc_text)
        if record.stack_info:
            line["stack"] = self._mask(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def secrets_of(settings: Settings) -> list[str]:
    """The secret values these settings hold, for the mask."""
    values = [
        secret.get_secret_value()
        for secret in (
            settings.client_secret,
            settings.flower_password,
            settings.metrics_token,
            settings.flower_broker_api,
        )
        if secret is not None
    ]
    for url in (settings.database_url, settings.broker_url, settings.flower_broker_api):
        if url is not None:
            password = urlsplit(url.get_secret_value()).password
            if password:
                values.append(password)
    return values


def configure_logging(
    settings: Settings | None, level: int | str = logging.INFO, *, stream: Any = None
) -> logging.Handler:
    """Send every log record to stderr (or `stream`) in the configured format; idempotent.

    Replaces the handler an earlier call installed and leaves other handlers alone.
    """
    mask = SecretMask(secrets_of(settings) if settings is not None else ())
    log_format = settings.log_format if settings is not None else "text"
    formatter: logging.Formatter = (
        JsonLinesFormatter(mask) if log_format == "json" else TextFormatter(mask)
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning becomes a line in the same format
    return handler
