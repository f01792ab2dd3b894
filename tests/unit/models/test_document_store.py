"""The document tables' queries: blobs written once and read in slices, and the fleet's
choice of store changed only by compare-and-set, read without waiting for a writer."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.engine import Engine

from models import document_store as documents
from models import utcnow
from models.db import session_scope


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    return sqlite_engine


def test_a_blob_is_written_once_and_read_in_slices(engine: Engine) -> None:
    assert documents.insert_blob(engine, "k", b"0123456789", now=utcnow())
    assert not documents.insert_blob(engine, "k", b"0123456789", now=utcnow())
    assert documents.blob_size(engine, "k") == 10
    assert documents.read_blob_slice(engine, "k", 3, 4) == b"3456"
    assert documents.read_blob_slice(engine, "k", 8, 4) == b"89"
    assert documents.read_blob_slice(engine, "k", 10, 4) == b""
    assert documents.delete_blob(engine, "k")
    assert not documents.delete_blob(engine, "k")
    assert documents.blob_size(engine, "k") is None
    assert documents.read_blob_slice(engine, "k", 0, 4) is None


def test_the_first_claim_holds(engine: Engine) -> None:
    assert documents.read_store_state(engine) is None
    first = documents.claim_store_state(engine, "postgres", now=utcnow(), reason="first")
    second = documents.claim_store_state(engine, "filesystem", now=utcnow(), reason="second")
    assert first.active == second.active == "postgres"
    assert second.reason == "first"
    assert second.other is None


def test_a_move_goes_through_its_steps_in_order_only(engine: Engine) -> None:
    now = utcnow()
    documents.claim_store_state(engine, "filesystem", now=now, reason="start")
    moving = {"source": "filesystem", "target": "s3://bucket-a", "now": now}
    assert not documents.switch_to_move_target(engine, **moving), "not announced yet"
    assert documents.begin_move(engine, **moving)
    assert not documents.begin_move(engine, source="filesystem", target="postgres", now=now)
    state = documents.read_store_state(engine)
    assert state is not None
    assert (state.active, state.other) == ("filesystem", "s3://bucket-a")
    assert not documents.finish_move(engine, **moving), "not switched yet"
    assert documents.switch_to_move_target(engine, **moving)
    state = documents.read_store_state(engine)
    assert state is not None
    assert (state.active, state.other) == ("s3://bucket-a", "filesystem")
    assert documents.finish_move(engine, **moving)
    state = documents.read_store_state(engine)
    assert state is not None
    assert (state.active, state.move_source, state.move_target) == ("s3://bucket-a", None, None)


def test_the_choice_is_read_while_another_connection_writes(engine: Engine) -> None:
    documents.claim_store_state(engine, "filesystem", now=utcnow(), reason="start")
    holding = threading.Event()
    release = threading.Event()

    def hold_the_write_lock() -> None:
        with session_scope(engine) as session:
            session.connection()  # BEGIN IMMEDIATE: SQLite's one writer
            holding.set()
            release.wait(timeout=10)

    writer = threading.Thread(target=hold_the_write_lock)
    writer.start()
    try:
        assert holding.wait(timeout=10)
        started = time.monotonic()
        state = documents.read_store_state(engine)
        assert time.monotonic() - started < 2, "the read waited for the writer"
        assert state is not None
        assert state.active == "filesystem"
    finally:
        release.set()
        writer.join(timeout=10)
