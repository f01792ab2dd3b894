"""Hand-built PDFs for the sandbox's structural check: every layout a writer may choose.

Built byte by byte (offsets computed, streams compressed with zlib) so the tests control
each structural element: a classic cross-reference table, an xref stream with or without
a PNG predictor, objects compressed in an object stream, a hybrid file. The tests check
the good ones with pypdf too, so the builder cannot drift from the format.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

from pypdf import PdfWriter

__all__ = ["PdfLayout", "build_pdf", "classic_pdf", "incremental_update"]

CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>"


@dataclass(frozen=True)
class PdfLayout:
    """How the file is laid out: `xref` "table" or "stream"; options for the stream form."""

    xref: str = "table"
    predictor: bool = False
    object_stream: bool = False
    hybrid: bool = False


def _content_stream(padding: int) -> bytes:
    text = b"BT /F1 12 Tf 72 760 Td (Certificate) Tj ET" + b"\n%" + b"x" * padding
    return b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream"


def _png_up(rows: list[bytes]) -> bytes:
    """Rows encoded with PNG filter 2 (Up), as Acrobat and qpdf write xref streams."""
    previous = bytes(len(rows[0]))
    out = bytearray()
    for row in rows:
        out.append(2)
        out += bytes((value - above) & 0xFF for value, above in zip(row, previous, strict=True))
        previous = row
    return bytes(out)


def _xref_stream(
    number: int, entries: dict[int, tuple[int, int, int]], size: int, predictor: bool
) -> bytes:
    """An xref stream object (W 1 4 2) for `entries`: number -> (type, field2, field3)."""
    numbers = sorted(entries)
    rows = [
        bytes([entries[n][0]]) + entries[n][1].to_bytes(4, "big") + entries[n][2].to_bytes(2, "big")
        for n in numbers
    ]
    index: list[int] = []
    for n in numbers:
        if index and index[-2] + index[-1] == n:
            index[-1] += 1
        else:
            index += [n, 1]
    parms = b""
    if predictor:
        raw = _png_up(rows)
        parms = b" /DecodeParms << /Predictor 12 /Columns 7 >>"
    else:
        raw = b"".join(rows)
    data = zlib.compress(raw)
    head = (
        b"<< /Type /XRef /Size %d /Root 1 0 R /W [1 4 2] /Index [%s] /Filter /FlateDecode%s"
        b" /Length %d >>" % (size, " ".join(map(str, index)).encode(), parms, len(data))
    )
    return b"%d 0 obj\n" % number + head + b"\nstream\n" + data + b"\nendstream\nendobj\n"


def build_pdf(layout: PdfLayout = PdfLayout(), *, padding: int = 0) -> bytes:
    """A one-page PDF in the given layout; `padding` grows its content stream."""
    bodies = {1: CATALOG, 2: PAGES, 3: PAGE, 4: _content_stream(padding)}
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    entries: dict[int, tuple[int, int, int]] = {}
    compressed = (1, 2, 3) if layout.object_stream else ()
    for number, body in bodies.items():
        if number in compressed:
            continue
        entries[number] = (1, len(out), 0)
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    next_number = 5
    if compressed:
        header = b" ".join(b"%d %d" % pair for pair in _offsets(bodies, compressed))
        objects = b"\n".join(bodies[n] for n in compressed)
        data = zlib.compress(header + b"\n" + objects)
        stream_number = next_number
        next_number += 1
        entries[stream_number] = (1, len(out), 0)
        out += (
            b"%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\n"
            % (stream_number, len(compressed), len(header) + 1, len(data))
            + b"stream\n"
            + data
            + b"\nendstream\nendobj\n"
        )
        for index, number in enumerate(compressed):
            entries[number] = (2, stream_number, index)
    if layout.xref == "stream":
        xref_number = next_number
        entries[xref_number] = (1, len(out), 0)
        xref_at = len(out)
        out += _xref_stream(xref_number, entries, xref_number + 1, layout.predictor)
        out += b"startxref\n%d\n%%%%EOF\n" % xref_at
        return bytes(out)
    extra = b""
    if layout.hybrid:
        # The table lists the compressed objects as free; the /XRefStm stream holds them.
        hybrid_number = next_number
        next_number += 1
        stream_entries = {n: e for n, e in entries.items() if e[0] == 2}
        extra = b" /XRefStm %d" % len(out)
        out += _xref_stream(hybrid_number, stream_entries, next_number, layout.predictor)
    xref_at = len(out)
    out += _table(entries, next_number)
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\n" % (next_number, extra)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def _offsets(bodies: dict[int, bytes], numbers: tuple[int, ...]) -> list[tuple[int, int]]:
    pairs = []
    position = 0
    for number in numbers:
        pairs.append((number, position))
        position += len(bodies[number]) + 1
    return pairs


def _table(entries: dict[int, tuple[int, int, int]], size: int) -> bytes:
    lines = [b"xref\n0 %d\n" % size, b"0000000000 65535 f \n"]
    for number in range(1, size):
        kind, offset, _gen = entries.get(number, (0, 0, 0))
        lines.append(b"%010d 00000 n \n" % offset if kind == 1 else b"0000000000 00001 f \n")
    return b"".join(lines)


def classic_pdf(size: int | None = None) -> bytes:
    """A one-page PDF with a classic table; exactly `size` bytes when asked."""
    bare = build_pdf()
    if size is None:
        return bare
    padding = size - len(bare)
    if padding < 0:
        raise ValueError(f"a PDF cannot be smaller than {len(bare)} bytes")
    data = build_pdf(padding=padding)
    # The offsets' digits are fixed-width, so only the /Length digits can shift the size.
    data = build_pdf(padding=padding - (len(data) - size))
    if len(data) != size:
        raise RuntimeError(f"could not build a PDF of exactly {size} bytes")
    return data


def incremental_update(data: bytes, title: str) -> bytes:
    """The file with one more revision appended by pypdf (which writes an xref stream)."""
    writer = PdfWriter(io.BytesIO(data), incremental=True)
    writer.add_metadata({"/Title": title})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()
