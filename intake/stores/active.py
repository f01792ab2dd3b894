"""The fleet's document store: the one the database names, the same for every process.

`YFDOCS_DOCUMENT_STORE` names the store a deployment starts with. The first put records it
in the database (`document_store_state`), and from then on every process asks the database,
at each put, read and delete, so that `yfdocs documents move` can switch a running fleet
without every process's settings changing at the same moment. A process whose setting
disagrees with the database follows the database and says so once in its log.

During a move the database names two stores. New PDFs go to the active one; a read that
does not find a document there looks in the other (it may not have been copied yet);
retention deletes from both, so that a copy never outlives its retention. `exists` asks the
active store only: the producer's check after its commit must put the bytes there again
when they are not yet there (`intake.producer`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.engine import Engine

from config import Settings, StoreLocation
from intake.storage import DocumentMissing, DocumentStore, FilesystemDocumentStore
from intake.stores.postgres import PostgresDocumentStore
from intake.stores.s3 import S3DocumentStore, s3_client_from_environment
from models import document_store as choice
from models import utcnow

__all__ = ["ActiveDocumentStore", "StoreBuilder", "open_document_store"]

log = logging.getLogger(__name__)


class StoreBuilder:
    """Builds each named store once per process (an S3 client is costly, and thread-safe)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        s3_client: Callable[[], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self._s3_client_factory = s3_client or (
            lambda: s3_client_from_environment(
                connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout
            )
        )
        self._s3_client: Any = None
        self._stores: dict[StoreLocation, DocumentStore] = {}
        self._lock = threading.Lock()

    def store(self, location: StoreLocation) -> DocumentStore:
        with self._lock:
            found = self._stores.get(location)
            if found is None:
                found = self._stores[location] = self._build(location)
            return found

    def _build(self, location: StoreLocation) -> DocumentStore:
        if location.kind == "filesystem":
            return FilesystemDocumentStore(self.settings.storage_dir)
        if location.kind == "postgres":
            return PostgresDocumentStore(self.engine)
        if self._s3_client is None:
            self._s3_client = self._s3_client_factory()
        return S3DocumentStore(location.bucket, location.prefix, self._s3_client)


class ActiveDocumentStore:
    """A `DocumentStore` that is, at each call, the store the database names."""

    def __init__(self, builder: StoreBuilder) -> None:
        self.builder = builder
        self.configured = builder.settings.document_store_location
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"ActiveDocumentStore(configured={str(self.configured)!r})"

    def _state(self, *, record: bool) -> choice.StoreState | None:
        engine = self.builder.engine
        state = choice.read_store_state(engine)
        if state is None and record:
            state = choice.claim_store_state(
                engine,
                str(self.configured),
                now=utcnow(),
                reason="the first PDF stored: YFDOCS_DOCUMENT_STORE of the process storing it",
            )
        if state is not None and state.active != str(self.configured):
            self._warn(state.active)
        return state

    def _warn(self, active: str) -> None:
        if active in self._warned:
            return
        self._warned.add(active)
        log.warning(
            "YFDOCS_DOCUMENT_STORE is %s, but the database names %s as the fleet's document "
            "store; this process uses %s: set YFDOCS_DOCUMENT_STORE=%s, or move the documents "
            "with `yfdocs documents move --to %s`",
            self.configured,
            active,
            active,
            active,
            self.configured,
        )

    def stores(self, *, record: bool = False) -> tuple[DocumentStore, DocumentStore | None]:
        """The active store and, during a move, the other one, as the database names them
        now (the settings' store while it names none)."""
        state = self._state(record=record)
        if state is None:
            return self.builder.store(self.configured), None
        other = state.other
        return (
            self.builder.store(StoreLocation.parse(state.active)),
            None if other is None else self.builder.store(StoreLocation.parse(other)),
        )

    def put(self, source: bytes | Path) -> str:
        active, _ = self.stores(record=True)
        return active.put(source)

    def open(self, key: str) -> BinaryIO:
        active, other = self.stores()
        try:
            return active.open(key)
        except DocumentMissing:
            if other is None:
                raise
        return other.open(key)

    def exists(self, key: str) -> bool:
        active, _ = self.stores()
        return active.exists(key)

    def delete(self, key: str) -> bool:
        active, other = self.stores()
        deleted = active.delete(key)
        if other is not None:
            deleted = other.delete(key) or deleted
        return deleted


def open_document_store(settings: Settings, engine: Engine) -> ActiveDocumentStore:
    """The document store every process uses: the fleet's, as the database names it."""
    return ActiveDocumentStore(StoreBuilder(settings, engine))
