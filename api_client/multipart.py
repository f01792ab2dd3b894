"""Multipart upload bodies streamed from disk or from an open stream, of a known length.

requests would build a multipart body in memory (several copies of a 4 MB PDF per call).
`MultipartBody` is a small file-like object instead: `read(n)` yields the part headers, then
the document in chunks straight from its file (or from a seekable stream: a document store
that is not a folder), then the closing boundary; `len()` is known up front so requests
sends `Content-Length` rather than chunked encoding. A body is single-use: build a fresh one
for every attempt (the 401 retry does); a stream is sought back to its start for each.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["CHUNK_SIZE", "BytesPart", "FilePart", "MultipartBody", "file_size", "new_boundary"]

CHUNK_SIZE = 64 * 1024
_CRLF = b"\r\n"
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")


def new_boundary() -> str:
    """A random boundary; 30 random bytes (240 bits) cannot plausibly occur in the file."""
    return "yfdocs-" + secrets.token_hex(30)


@dataclass(frozen=True)
class BytesPart:
    """A part held in memory (a text field, a JSON document): small by construction."""

    headers: Sequence[tuple[str, str]]
    content: bytes


@dataclass(frozen=True)
class FilePart:
    """A part read in chunks when the body is sent: from a file on disk, or from an open
    binary stream, from position `start` (the body seeks there, so each body sends the
    whole document again); exactly `size` bytes either way."""

    headers: Sequence[tuple[str, str]]
    source: Path | BinaryIO
    size: int
    start: int = 0


def _header_block(boundary: bytes, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [b"--" + boundary]
    for name, value in headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"line break in multipart header {name!r}")
        lines.append(f"{name}: {value}".encode())
    return _CRLF.join(lines) + _CRLF + _CRLF


class MultipartBody:
    """A multipart body as a readable stream of known length; single use."""

    def __init__(
        self,
        parts: Sequence[BytesPart | FilePart],
        *,
        subtype: str = "form-data",
        boundary: str | None = None,
        chunk_size: int = CHUNK_SIZE,
        root_type: str | None = None,
    ) -> None:
        self.boundary = boundary or new_boundary()
        self.subtype = subtype
        if subtype == "related" and not root_type:
            # RFC 2387 section 3.1: the type parameter is required on multipart/related.
            raise ValueError("multipart/related needs root_type, the first part's media type")
        if root_type is not None and not _MEDIA_TYPE.fullmatch(root_type):
            raise ValueError(f"root_type {root_type!r} is not a media type")
        self.root_type = root_type
        self._chunk_size = chunk_size
        self._parts = list(parts)
        encoded = self.boundary.encode("ascii")
        if not 1 <= len(encoded) <= 70:
            raise ValueError("a multipart boundary has 1 to 70 characters (RFC 2046)")
        for part in self._parts:
            if isinstance(part, BytesPart) and b"--" + encoded in part.content:
                raise ValueError("the boundary occurs in a part's content")
        self._length = 0
        for part in self._parts:
            self._length += len(_header_block(encoded, part.headers))
            self._length += len(part.content) if isinstance(part, BytesPart) else part.size
            self._length += len(_CRLF)
        self._length += len(b"--" + encoded + b"--" + _CRLF)
        self._chunks = self._generate()
        self._buffer = b""
        self._produced = 0
        self._started = False

    @property
    def content_type(self) -> str:
        """The Content-Type header value for this body.

        multipart/related names its root part's media type in `type=` (RFC 2387); the value
        holds a `/`, a tspecial, so it is quoted.
        """
        if self.root_type is not None:
            return f'multipart/{self.subtype}; type="{self.root_type}"; boundary={self.boundary}'
        return f"multipart/{self.subtype}; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    @property
    def len(self) -> int:
        """requests' `super_len` looks for this too."""
        return self._length

    def _generate(self) -> Iterator[bytes]:
        encoded = self.boundary.encode("ascii")
        for part in self._parts:
            yield _header_block(encoded, part.headers)
            if isinstance(part, BytesPart):
                yield part.content
            else:
                yield from self._file_chunks(part)
            yield _CRLF
        yield b"--" + encoded + b"--" + _CRLF

    def _file_chunks(self, part: FilePart) -> Iterator[bytes]:
        if isinstance(part.source, Path):
            with open(part.source, "rb") as handle:
                yield from self._sized_chunks(handle, part.size, str(part.source))
            return
        part.source.seek(part.start)
        yield from self._sized_chunks(part.source, part.size, "the document stream")

    def _sized_chunks(self, handle: BinaryIO, size: int, name: str) -> Iterator[bytes]:
        """Exactly `size` bytes of `handle`, a chunk at a time; OSError if it has more or less
        (a body whose length was announced must not send anything else)."""
        remaining = size
        while remaining > 0:
            chunk = handle.read(min(self._chunk_size, remaining))
            if not chunk:
                raise OSError(f"{name} shrank while it was being sent")
            remaining -= len(chunk)
            yield chunk
        if handle.read(1):
            raise OSError(f"{name} grew while it was being sent")

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes (all remaining when negative or None); b"" at the end."""
        self._started = True
        if size is None or size < 0:
            data = self._buffer + b"".join(self._chunks)
            self._buffer = b""
            self._produced += len(data)
            return data
        while len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        self._produced += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(self._chunk_size):
            yield chunk

    @property
    def bytes_produced(self) -> int:
        """How much has been read so far (equals len() once the body is consumed)."""
        return self._produced


def file_size(path: str | os.PathLike[str]) -> int:
    """The size of a regular file, or OSError."""
    return Path(path).stat().st_size
