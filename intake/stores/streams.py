"""A stored document as a seekable stream of known size, fetched a slice at a time.

The upload streams the PDF into its request body in 64 KiB pieces and, after a 401, seeks
back to send it again. A store whose bytes are not a local file (a database row, an object)
gives it a `SlicedDocument`: `read` fetches one slice (`SLICE_BYTES`) at a time from the
backend through `io.BufferedReader`, `seek` only moves the position, so a process holds at
most one slice of a document, whatever its size.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from intake.storage import DocumentMissing

__all__ = ["SLICE_BYTES", "SlicedDocument", "buffered"]

SLICE_BYTES = 1 << 20


class SlicedDocument(io.RawIOBase):
    """The raw stream: a subclass says how to fetch `length` bytes from `offset`."""

    def __init__(self, key: str, size: int) -> None:
        super().__init__()
        self.key = key
        self.size = size
        self._position = 0

    def fetch(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes from `offset` (at least one while offset < size); raises
        `DocumentMissing` when the document has gone meanwhile."""
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative position {base + offset}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("read from a closed document")
        length = min(len(buffer), self.size - self._position)
        if length <= 0:
            return 0
        data = self.fetch(self._position, length)
        if not data:
            raise DocumentMissing(f"stored document {self.key} ended early: it was changed")
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def buffered(raw: SlicedDocument) -> BinaryIO:
    """The stream a store hands out: one slice buffered, `read(n)` for any n."""
    return io.BufferedReader(raw, buffer_size=SLICE_BYTES)
