"""The exposition the intake and `yfdocs metrics` serve, its formats and its token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import Engine

from config import Settings
from models import make_engine, migrate
from monitoring.exposition import metrics_registry, render
from monitoring.process_metrics import INTAKE_OUTCOMES, INTAKE_REQUESTS, count_intake_request
from monitoring.server import MetricsServer, is_loopback


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'yfdocs.sqlite3'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]


def intake_count(outcome: str) -> float:
    return INTAKE_REQUESTS.labels(outcome=outcome)._value.get()


def test_the_intake_counts_its_requests_by_outcome(engine: Engine, settings: Settings) -> None:
    before = intake_count("accepted")
    count_intake_request("accepted")

    assert intake_count("accepted") == before + 1
    body = render(metrics_registry(engine, settings, process_metrics=True))[0].decode()
    for outcome in INTAKE_OUTCOMES:
        assert f'yfdocs_intake_requests_total{{outcome="{outcome}"}}' in body
    with pytest.raises(ValueError, match="unknown intake outcome"):
        count_intake_request("teapot")


def test_only_the_intake_exports_its_counter(engine: Engine, settings: Settings) -> None:
    body = render(metrics_registry(engine, settings))[0].decode()

    assert "yfdocs_intake_requests_total" not in body
    assert "yfdocs_jobs" in body


def test_openmetrics_when_the_scraper_asks_for_it(engine: Engine, settings: Settings) -> None:
    registry = metrics_registry(engine, settings)

    body, content_type = render(registry, "application/openmetrics-text; version=1.0.0")

    assert content_type.startswith("application/openmetrics-text")
    assert body.decode().rstrip().endswith("# EOF")
    assert render(registry)[1].startswith("text/plain; version=0.0.4")


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("metrics.example", False),
    ],
)
def test_what_counts_as_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_the_server_wants_its_bearer_token(engine: Engine, settings: Settings) -> None:
    server = MetricsServer("127.0.0.1", 0, metrics_registry(engine, settings), "t0ken-123")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = server.url
        assert requests.get(url, timeout=5).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert requests.get(url, headers=wrong, timeout=5).status_code == 401
        right = {"Authorization": "Bearer t0ken-123"}
        answer = requests.get(url, headers=right, timeout=5)
        assert answer.status_code == 200
        assert "yfdocs_database_up 1.0" in answer.text
        other = url.replace("/metrics", "/other")
        assert requests.get(other, headers=right, timeout=5).status_code == 404
        assert requests.get(other, timeout=5).status_code == 401, "nothing without the token"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
