"""The postgres document store: PDFs in the `document_blobs` table of the fleet's database.

Every process of a fleet already reaches this database, so no folder or object store has
to be shared. A put checks for the key first (a document already stored is not sent again)
and writes the whole document in one transaction, so no reader ever sees part of one. A
read fetches slices with `substr`, so no process holds more than a slice. The table's
queries live in `models.document_store`.

Retention's delete runs in a transaction of its own, on a second connection, while
retention's own transaction holds the key's advisory lock (`models.jobs`). That is safe
without sharing the transaction: the only step that can make the key needed again, a
producer's insert of a job for the same bytes, takes that lock first and so waits for
retention to finish; a producer whose put found the row just before it was deleted stores
the bytes again after its commit (`intake.producer`). If retention's transaction fails
after the delete committed, its jobs stay unmarked and the next pass deletes nothing and
marks them. Sharing the transaction would make the delete callback take a database
session, which the filesystem and S3 stores do not have.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.engine import Engine

from config import POSTGRES_MAX_DOCUMENT_BYTES
from intake.storage import DocumentMissing, sha256_of_key, storage_key
from intake.stores.streams import SlicedDocument, buffered
from intake.validation import FileTooLarge
from models import document_store as blobs
from models import utcnow

__all__ = ["PostgresDocumentStore"]


class PostgresDocumentStore:
    """PDFs of at most `POSTGRES_MAX_DOCUMENT_BYTES` in the fleet's PostgreSQL database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __repr__(self) -> str:
        return "PostgresDocumentStore()"  # never the URL: it holds the password

    def put(self, source: bytes | Path) -> str:
        content = source if isinstance(source, bytes) else Path(source).read_bytes()
        if len(content) > POSTGRES_MAX_DOCUMENT_BYTES:
            raise FileTooLarge(
                "file",
                f"{len(content)} bytes is more than the postgres document store holds "
                f"({POSTGRES_MAX_DOCUMENT_BYTES} bytes a document)",
            )
        key = storage_key(hashlib.sha256(content).hexdigest())
        if blobs.blob_size(self.engine, key) is None:
            blobs.insert_blob(self.engine, key, content, now=utcnow())
        return key

    def open(self, key: str) -> BinaryIO:
        sha256_of_key(key)
        size = blobs.blob_size(self.engine, key)
        if size is None:
            raise DocumentMissing.for_key(key)
        return buffered(_BlobSlices(self.engine, key, size))

    def exists(self, key: str) -> bool:
        sha256_of_key(key)
        return blobs.blob_size(self.engine, key) is not None

    def delete(self, key: str) -> bool:
        sha256_of_key(key)
        return blobs.delete_blob(self.engine, key)


class _BlobSlices(SlicedDocument):
    def __init__(self, engine: Engine, key: str, size: int) -> None:
        super().__init__(key, size)
        self._engine = engine

    def fetch(self, offset: int, length: int) -> bytes:
        data = blobs.read_blob_slice(self._engine, self.key, offset, length)
        if data is None:
            raise DocumentMissing.for_key(self.key)
        return data
