"""Fixtures for the client's unit tests: a scripted transport mounted on a real Session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from api_client import Timeouts, YouforceClient

from .fakes import API_URL, CLIENT_ID, SECRET, TOKEN_URL, FakeTransport, RecordingGovernor


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def governor() -> RecordingGovernor:
    return RecordingGovernor()


@pytest.fixture
def session(transport: FakeTransport) -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.mount("https://", transport)
        yield s


@pytest.fixture
def client(session: requests.Session, governor: RecordingGovernor) -> Iterator[YouforceClient]:
    with YouforceClient(
        api_url=API_URL,
        token_url=TOKEN_URL,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        governor=governor,
        timeouts=Timeouts(connect=1.5, read=7.0),
        session=session,
    ) as c:
        yield c


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "diploma_2024.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n")
    return path
