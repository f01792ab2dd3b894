"""An embedded SQLite database at head for each model test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from models import make_engine, migrate


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'models.sqlite3'}")
    migrate(engine)
    yield engine
    engine.dispose()
