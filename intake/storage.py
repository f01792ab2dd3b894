"""Where accepted PDFs wait for their upload: content-addressed, written atomically.

A job row names its PDF by a storage key; the bytes live in a document store, once, however
often the same document is enqueued. `DocumentStore` is the one interface of every backend
(this module's folder, and `intake.stores`: PostgreSQL, S3), and every backend keeps the
same promises, so the producer, the worker and retention never ask which one they have:

- the key is `ab/cd/<sha256>.pdf`, the same on every backend (a move copies by key), and a
  put of bytes already stored writes nothing;
- a put returns only once the document is complete, and no reader sees part of one;
- `open` gives a seekable stream read in chunks, never the whole document in memory;
- a document that is gone raises `DocumentMissing` (its job fails with that reason).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from models.errors import Decision, YfdocsError

__all__ = [
    "DocumentMissing",
    "DocumentStore",
    "DocumentUnavailable",
    "FilesystemDocumentStore",
    "StorageKeyError",
    "sha256_of_key",
    "source_digests",
    "storage_key",
]

CHUNK_BYTES = 1 << 20
_KEY = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.pdf")


class DocumentUnavailable(YfdocsError):
    """The stored PDF of a job cannot be read: the job fails with this reason."""

    decision = Decision.FAIL


class StorageKeyError(DocumentUnavailable, ValueError):
    """A storage key that this store never hands out (and would not resolve safely)."""


class DocumentMissing(DocumentUnavailable):
    """The stored PDF is gone (deleted by hand, or a store that lost it)."""

    @classmethod
    def for_key(cls, key: str) -> DocumentMissing:
        return cls(f"stored document {key} is missing")


class DocumentStore(Protocol):
    """Keeps PDFs by content; a key names the same bytes forever."""

    def put(self, source: bytes | Path) -> str:
        """Store the bytes (or the file's bytes) and return their key; idempotent."""
        ...

    def open(self, key: str) -> BinaryIO:
        """The stored bytes as a seekable stream from their start; `DocumentMissing` when
        they are gone. Close it (a `with` block) when done."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> bool:
        """Remove the bytes and say whether they were there; gone already is no error."""
        ...


def storage_key(sha256: str) -> str:
    """The key of the bytes with this SHA-256 (hex), on every backend."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.pdf"


def sha256_of_key(key: str) -> str:
    """The SHA-256 a key names; `StorageKeyError` for anything a store never hands out (so
    that no key can reach outside the store: `..`, absolute paths, other names)."""
    match = _KEY.fullmatch(key)
    if match is None or match.group(3)[:4] != match.group(1) + match.group(2):
        raise StorageKeyError(f"not a storage key of this store: {key!r}")
    return match.group(3)


def source_digests(source: bytes | Path, algorithms: Sequence[str]) -> tuple[list[bytes], int]:
    """The digests of the bytes (or of the file, read in chunks) and their length, in one
    pass: a store that must name the object before it writes it learns the key here."""
    hashes = [hashlib.new(name, usedforsecurity=False) for name in algorithms]
    if isinstance(source, bytes):
        for digest in hashes:
            digest.update(source)
        return [digest.digest() for digest in hashes], len(source)
    size = 0
    with Path(source).open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            size += len(chunk)
            for digest in hashes:
                digest.update(chunk)
    return [digest.digest() for digest in hashes], size


class FilesystemDocumentStore:
    """PDFs under `root` as `ab/cd/<sha256>.pdf`.

    Written to a temporary file in the target folder, fsynced, then `os.replace`d into
    place: a reader (or a crash) never sees half a file, and two producers storing the same
    bytes at once both end with the one complete copy. The key is the hash of the bytes
    actually written, so a file that changed after the first look is still named right.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FilesystemDocumentStore({str(self.root)!r})"

    @staticmethod
    def key_for(sha256: str) -> str:
        return storage_key(sha256)

    def path(self, key: str) -> Path:
        """The file behind `key`; only keys of the store's own shape are accepted."""
        sha256_of_key(key)
        return self.root / key

    def put(self, source: bytes | Path) -> str:
        # Asked first: bytes already stored are not written (and fsynced) again.
        (sha256,), _ = source_digests(source, ("sha256",))
        known = self.key_for(sha256.hex())
        if (self.root / known).is_file():
            return known
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / ".staging"
        staging.mkdir(exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(dir=staging, suffix=".part")
        temp_path = Path(temp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(descriptor, "wb") as out:
                if isinstance(source, bytes):
                    digest.update(source)
                    out.write(source)
                else:
                    with Path(source).open("rb") as handle:
                        while chunk := handle.read(CHUNK_BYTES):
                            digest.update(chunk)
                            out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            key = self.key_for(digest.hexdigest())
            target = self.root / key
            if target.exists():
                temp_path.unlink()
                return key
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp_path, target)
            _fsync_directory(target.parent)
            return key
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp_path.unlink()
            raise

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError:
            raise DocumentMissing.for_key(key) from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> bool:
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return False
        return True


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
