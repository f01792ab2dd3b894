"""A structural check of PDF files, as a server makes one before it accepts a file.

Not a PDF reader: it follows only what every reader must follow to reach a page, and
refuses a file where any step is missing or points at nothing:

1. the header `%PDF-x.y` at the start, and a last `%%EOF` with no PDF structure after it
   (readers ignore other bytes after it, however many: padding, a mail footer);
2. the last `startxref`, whose offset must land on a cross-reference table (`xref`) or a
   cross-reference stream (an object with `/Type /XRef`);
3. every section of the chain that `/Prev` (incremental updates) and `/XRefStm` (hybrid
   files) link, each entry in use pointing at the object it names;
4. the newest trailer's `/Root`, a catalog with `/Pages`, and down the page tree at least
   one `/Type /Page` object, also when it sits in a compressed object stream.

Streams the check must read (xref streams, object streams) may be Flate-compressed with a
PNG predictor, as PDF writers produce them. A magic number alone let through an HTML page
between `%PDF-` and `%%EOF`, and a truncated file; neither has this structure.

Standard library only: the sandbox shares no code with the client and uses no PDF library,
so it cannot inherit a library's leniency. Encrypted files are not decrypted: their
dictionaries are plain, but an object stream of theirs cannot be read here, and a file
whose page tree sits in one is refused.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

__all__ = ["PdfStructureError", "check_pdf_structure", "pdf_structure_problem"]

_AFTER_EOF_STRUCTURE_RE = re.compile(rb"\bobj\b|\bxref\b|\btrailer\b|\bstartxref\b")
_HEADER_RE = re.compile(rb"%PDF-[0-9]\.[0-9]")
_WHITESPACE = b"\x00\t\n\x0c\r "
_DELIMITERS = b"()<>[]{}/%"
_STOP = _WHITESPACE + _DELIMITERS
_OBJ_HEADER_RE = re.compile(rb"[\x00\t\n\x0c\r ]*(\d+)[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+obj")
_XREF_ENTRY_RE = re.compile(rb"(\d{10}) (\d{5}) ([nf])(?:\r\n| \r| \n|\r|\n)")
_NUMBER_RE = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)")
_INT_RE = re.compile(rb"\d+")
_COUNT_RE = re.compile(rb"[ \t]+(\d+)")
_MAX_DEPTH = 64
_MAX_SECTIONS = 1024
_MAX_PAGE_NODES = 100_000
_MAX_DECODED = 64 * 1024 * 1024


class PdfStructureError(ValueError):
    """The file is not a PDF whose structure leads to a page; the message says where not."""


class Name(str):
    """A PDF name (`/Type`), kept apart from strings; the value has no leading slash."""


@dataclass(frozen=True)
class Ref:
    """An indirect reference `num gen R`."""

    num: int
    gen: int


@dataclass(frozen=True)
class Stream:
    """A stream object: its dictionary and its raw (still encoded) bytes."""

    dictionary: dict[str, Any]
    raw: bytes


@dataclass(frozen=True)
class _InFile:
    offset: int
    gen: int


@dataclass(frozen=True)
class _InObjectStream:
    stream_num: int
    index: int


_Entry = _InFile | _InObjectStream


def pdf_structure_problem(data: bytes) -> str | None:
    """What makes `data` structurally not a PDF, or None when it is one."""
    try:
        check_pdf_structure(data)
    except PdfStructureError as exc:
        return str(exc)
    return None


def check_pdf_structure(data: bytes) -> None:
    """Raise `PdfStructureError` unless `data` is a PDF whose structure reaches a page."""
    if not _HEADER_RE.match(data):
        raise PdfStructureError("no %PDF-x.y header at the start")
    _Document(data).check()


# -- lexing and parsing ------------------------------------------------------------------


def _skip_space(data: bytes, pos: int) -> int:
    """Skip whitespace and comments."""
    size = len(data)
    while pos < size:
        byte = data[pos]
        if byte in _WHITESPACE:
            pos += 1
        elif byte == 0x25:  # % comment to the end of the line
            while pos < size and data[pos] not in b"\r\n":
                pos += 1
        else:
            break
    return pos


def _keyword_at(data: bytes, pos: int, word: bytes) -> bool:
    end = pos + len(word)
    return data.startswith(word, pos) and (end >= len(data) or data[end] in _STOP)


def _parse_name(data: bytes, pos: int) -> tuple[Name, int]:
    end = pos + 1
    while end < len(data) and data[end] not in _STOP:
        end += 1
    raw = data[pos + 1 : end]
    text = re.sub(rb"#([0-9A-Fa-f]{2})", lambda match: bytes([int(match[1], 16)]), raw)
    return Name(text.decode("latin-1")), end


def _parse_literal_string(data: bytes, pos: int) -> tuple[bytes, int]:
    depth = 0
    index = pos
    size = len(data)
    while index < size:
        byte = data[index]
        if byte == 0x5C:  # backslash: the next byte is escaped
            index += 2
            continue
        if byte == 0x28:
            depth += 1
        elif byte == 0x29:
            depth -= 1
            if depth == 0:
                return data[pos + 1 : index], index + 1
        index += 1
    raise PdfStructureError(f"unterminated string at offset {pos}")


def _parse_hex_string(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.find(b">", pos + 1)
    if end < 0:
        raise PdfStructureError(f"unterminated hex string at offset {pos}")
    digits = bytes(byte for byte in data[pos + 1 : end] if byte not in _WHITESPACE)
    if not re.fullmatch(rb"[0-9A-Fa-f]*", digits):
        raise PdfStructureError(f"bad hex string at offset {pos}")
    return digits, end + 1


def _parse_number_or_ref(data: bytes, pos: int) -> tuple[Any, int]:
    match = _NUMBER_RE.match(data, pos)
    if match is None:
        raise PdfStructureError(f"unreadable token at offset {pos}")
    text = match.group()
    end = match.end()
    if not re.fullmatch(rb"[+-]?\d+", text):
        return float(text), end
    number = int(text)
    if not text[:1].isdigit():
        return number, end
    # `num gen R` is a reference; look ahead without committing.
    after = _skip_space(data, end)
    gen_match = _INT_RE.match(data, after)
    if gen_match is not None and after > end:
        after_gen = _skip_space(data, gen_match.end())
        if after_gen > gen_match.end() and _keyword_at(data, after_gen, b"R"):
            return Ref(number, int(gen_match.group())), after_gen + 1
    return number, end


def parse_object(data: bytes, pos: int, depth: int = 0) -> tuple[Any, int]:
    """One direct object at `pos` (after whitespace); returns it and the offset after it."""
    if depth > _MAX_DEPTH:
        raise PdfStructureError("objects nested too deeply")
    pos = _skip_space(data, pos)
    if pos >= len(data):
        raise PdfStructureError("the file ends inside an object")
    byte = data[pos]
    if data.startswith(b"<<", pos):
        return _parse_dictionary(data, pos + 2, depth)
    if byte == 0x5B:  # [
        items: list[Any] = []
        pos += 1
        while True:
            pos = _skip_space(data, pos)
            if pos >= len(data):
                raise PdfStructureError("the file ends inside an array")
            if data[pos] == 0x5D:  # ]
                return items, pos + 1
            item, pos = parse_object(data, pos, depth + 1)
            items.append(item)
    if byte == 0x2F:  # /
        return _parse_name(data, pos)
    if byte == 0x28:  # (
        return _parse_literal_string(data, pos)
    if byte == 0x3C:  # <
        return _parse_hex_string(data, pos)
    for word, value in ((b"true", True), (b"false", False), (b"null", None)):
        if _keyword_at(data, pos, word):
            return value, pos + len(word)
    return _parse_number_or_ref(data, pos)


def _parse_dictionary(data: bytes, pos: int, depth: int) -> tuple[dict[str, Any], int]:
    entries: dict[str, Any] = {}
    while True:
        pos = _skip_space(data, pos)
        if data.startswith(b">>", pos):
            return entries, pos + 2
        if pos >= len(data):
            raise PdfStructureError("the file ends inside a dictionary")
        if data[pos] != 0x2F:
            raise PdfStructureError(f"a dictionary key is not a name at offset {pos}")
        key, pos = _parse_name(data, pos)
        value, pos = parse_object(data, pos, depth + 1)
        entries[str(key)] = value


# -- stream decoding ---------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _inflate(raw: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        decoded = inflater.decompress(raw, _MAX_DECODED)
    except zlib.error as exc:
        raise PdfStructureError(f"a Flate stream does not decompress ({exc})") from None
    if inflater.unconsumed_tail:
        raise PdfStructureError("a compressed stream is too large once decompressed")
    return decoded


def _unpredict(data: bytes, params: dict[str, Any]) -> bytes:
    predictor = params.get("Predictor", 1)
    if predictor == 1:
        return data
    if not isinstance(predictor, int) or not 10 <= predictor <= 15:
        raise PdfStructureError(f"unsupported predictor {predictor!r}")
    colors = params.get("Colors", 1)
    bits = params.get("BitsPerComponent", 8)
    columns = params.get("Columns", 1)
    if not all(isinstance(value, int) and value > 0 for value in (colors, bits, columns)):
        raise PdfStructureError("bad predictor parameters")
    pixel = max(1, colors * bits // 8)
    row_size = (colors * bits * columns + 7) // 8
    if len(data) % (row_size + 1):
        raise PdfStructureError("predicted data does not fill whole rows")
    previous = bytearray(row_size)
    out = bytearray()
    for start in range(0, len(data), row_size + 1):
        kind = data[start]
        row = bytearray(data[start + 1 : start + 1 + row_size])
        for i in range(row_size):
            left = row[i - pixel] if i >= pixel else 0
            up = previous[i]
            corner = previous[i - pixel] if i >= pixel else 0
            if kind == 0:
                continue
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                distances = (abs(estimate - left), abs(estimate - up), abs(estimate - corner))
                nearest = (left, up, corner)[distances.index(min(distances))]
                row[i] = (row[i] + nearest) & 0xFF
            else:
                raise PdfStructureError(f"unknown PNG row filter {kind}")
        out += row
        previous = row
    return bytes(out)


def decode_stream(stream: Stream) -> bytes:
    """The stream's bytes with its filters undone (none, or FlateDecode with a predictor)."""
    filters = _as_list(stream.dictionary.get("Filter"))
    params = _as_list(stream.dictionary.get("DecodeParms"))
    data = stream.raw
    for index, name in enumerate(filters):
        if name not in ("FlateDecode", "Fl"):
            raise PdfStructureError(f"a structural stream uses the filter /{name}")
        data = _inflate(data)
        param = params[index] if index < len(params) else None
        if isinstance(param, dict):
            data = _unpredict(data, param)
    return data


# -- the document ------------------------------------------------------------------------


class _Document:
    """One file under check: its cross-reference entries and the objects they lead to."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.entries: dict[int, _Entry] = {}
        self.trailer: dict[str, Any] = {}
        self._object_streams: dict[int, tuple[bytes, dict[int, int]]] = {}

    def check(self) -> None:
        start = self._startxref()
        self._read_sections(start)
        self._verify_offsets()
        root = self.trailer.get("Root")
        if not isinstance(root, Ref):
            raise PdfStructureError("the trailer has no /Root reference")
        catalog = self.resolve(root)
        if not isinstance(catalog, dict):
            raise PdfStructureError(f"/Root {root.num} {root.gen} R is not a dictionary")
        if catalog.get("Type") not in (None, "Catalog"):
            raise PdfStructureError("/Root is not a /Catalog")
        self._find_a_page(catalog.get("Pages"))

    # the tail and the cross-reference chain

    def _startxref(self) -> int:
        data = self.data
        eof = data.rfind(b"%%EOF")
        if eof < 0:
            raise PdfStructureError("no %%EOF marker (a truncated file?)")
        if _AFTER_EOF_STRUCTURE_RE.search(data, eof + len(b"%%EOF")):
            raise PdfStructureError("a revision after the last %%EOF is cut off (truncated?)")
        keyword = data.rfind(b"startxref", 0, eof)
        if keyword < 0:
            raise PdfStructureError("no startxref before %%EOF")
        pos = _skip_space(data, keyword + len(b"startxref"))
        match = _INT_RE.match(data, pos)
        if match is None or data[match.end() : eof].strip(_WHITESPACE):
            raise PdfStructureError("startxref is not followed by an offset and %%EOF")
        offset = int(match.group())
        if offset >= keyword:
            raise PdfStructureError(f"startxref {offset} points past the cross-reference data")
        return offset

    def _read_sections(self, start: int) -> None:
        pending = [start]
        seen: set[int] = set()
        newest = True
        while pending:
            offset = pending.pop(0)
            if offset in seen:
                raise PdfStructureError(f"the cross-reference chain loops at offset {offset}")
            if len(seen) >= _MAX_SECTIONS:
                raise PdfStructureError("too many cross-reference sections")
            seen.add(offset)
            if _keyword_at(self.data, _skip_space(self.data, offset), b"xref"):
                trailer = self._read_table(offset)
                hybrid = trailer.get("XRefStm")
                if hybrid is not None:
                    if not isinstance(hybrid, int) or isinstance(hybrid, bool):
                        raise PdfStructureError("/XRefStm is not an offset")
                    # The stream's entries come after the table's, before older sections.
                    self._read_stream_section(hybrid)
                    seen.add(hybrid)
            else:
                trailer = self._read_stream_section(offset)
            if newest:
                self.trailer = trailer
                newest = False
            previous = trailer.get("Prev")
            if previous is not None:
                if not isinstance(previous, int) or isinstance(previous, bool):
                    raise PdfStructureError("/Prev is not an offset")
                if not 0 <= previous < len(self.data):
                    raise PdfStructureError(f"/Prev {previous} points outside the file")
                pending.append(previous)

    def _add(self, num: int, entry: _Entry) -> None:
        # Sections are read newest first: the first entry found for a number wins.
        self.entries.setdefault(num, entry)

    def _read_table(self, offset: int) -> dict[str, Any]:
        data = self.data
        pos = _skip_space(data, offset) + len(b"xref")
        subsections = 0
        while True:
            pos = _skip_space(data, pos)
            if _keyword_at(data, pos, b"trailer"):
                break
            first = _INT_RE.match(data, pos)
            count = _COUNT_RE.match(data, first.end()) if first is not None else None
            if first is None or count is None:
                raise PdfStructureError(f"malformed cross-reference table at offset {offset}")
            pos = count.end()
            while pos < len(data) and data[pos] in b" \t":
                pos += 1
            if data[pos : pos + 2] == b"\r\n":
                pos += 2
            elif data[pos : pos + 1] in (b"\r", b"\n"):
                pos += 1
            else:
                raise PdfStructureError(f"malformed cross-reference subsection at offset {pos}")
            number = int(first.group())
            for index in range(int(count.group(1))):
                entry = _XREF_ENTRY_RE.match(data, pos)
                if entry is None:
                    raise PdfStructureError(f"malformed cross-reference entry at offset {pos}")
                pos = entry.end()
                if entry.group(3) == b"n":
                    self._add(number + index, _InFile(int(entry.group(1)), int(entry.group(2))))
            subsections += 1
        if not subsections:
            raise PdfStructureError(f"empty cross-reference table at offset {offset}")
        trailer, _end = parse_object(data, pos + len(b"trailer"))
        if not isinstance(trailer, dict):
            raise PdfStructureError("the trailer is not a dictionary")
        if not isinstance(trailer.get("Size"), int):
            raise PdfStructureError("the trailer has no /Size")
        return trailer

    def _read_stream_section(self, offset: int) -> dict[str, Any]:
        if not 0 <= offset < len(self.data):
            raise PdfStructureError(f"a cross-reference offset {offset} points outside the file")
        _num, value = self._object_at(offset, None, direct_length=True)
        if not isinstance(value, Stream) or value.dictionary.get("Type") != "XRef":
            raise PdfStructureError(
                f"offset {offset} holds neither a cross-reference table nor an xref stream"
            )
        dictionary = value.dictionary
        widths = dictionary.get("W")
        size = dictionary.get("Size")
        if (
            not isinstance(widths, list)
            or len(widths) != 3
            or not all(isinstance(w, int) and 0 <= w <= 8 for w in widths)
        ):
            raise PdfStructureError("an xref stream has no valid /W")
        if not isinstance(size, int) or size < 0:
            raise PdfStructureError("an xref stream has no /Size")
        index = dictionary.get("Index", [0, size])
        if (
            not isinstance(index, list)
            or len(index) % 2
            or not all(isinstance(i, int) and i >= 0 for i in index)
        ):
            raise PdfStructureError("an xref stream has a malformed /Index")
        rows = decode_stream(value)
        row_size = sum(widths)
        expected = sum(index[1::2])
        if row_size == 0 or len(rows) < expected * row_size:
            raise PdfStructureError("an xref stream holds fewer entries than its /Index lists")
        pos = 0
        for first, count in zip(index[::2], index[1::2], strict=True):
            for number in range(first, first + count):
                fields = []
                for width in widths:
                    fields.append(int.from_bytes(rows[pos : pos + width], "big"))
                    pos += width
                kind = fields[0] if widths[0] else 1
                if kind == 1:
                    self._add(number, _InFile(fields[1], fields[2]))
                elif kind == 2:
                    self._add(number, _InObjectStream(fields[1], fields[2]))
        return dictionary

    def _verify_offsets(self) -> None:
        """Every entry in use must point at the object it names (truncation breaks these)."""
        for num, entry in self.entries.items():
            if not isinstance(entry, _InFile):
                continue
            match = _OBJ_HEADER_RE.match(self.data, entry.offset)
            if match is None or int(match[1]) != num or int(match[2]) != entry.gen:
                raise PdfStructureError(
                    f"the cross-reference entry of object {num} (offset {entry.offset}) "
                    "does not point at that object"
                )

    # objects

    def _object_at(
        self, offset: int, expected: Ref | None, *, direct_length: bool = False
    ) -> tuple[int, Any]:
        data = self.data
        match = _OBJ_HEADER_RE.match(data, offset)
        if match is None:
            raise PdfStructureError(f"no object starts at offset {offset}")
        num, gen = int(match[1]), int(match[2])
        if expected is not None and (num, gen) != (expected.num, expected.gen):
            raise PdfStructureError(f"offset {offset} holds object {num}, not {expected.num}")
        value, pos = parse_object(data, match.end())
        after = _skip_space(data, pos)
        if isinstance(value, dict) and _keyword_at(data, after, b"stream"):
            return num, self._stream(value, after + len(b"stream"), direct_length)
        if not _keyword_at(data, after, b"endobj"):
            raise PdfStructureError(f"object {num} does not end with endobj")
        return num, value

    def _stream(self, dictionary: dict[str, Any], pos: int, direct_length: bool) -> Stream:
        data = self.data
        if data.startswith(b"\r\n", pos):
            pos += 2
        elif data.startswith(b"\n", pos):
            pos += 1
        else:
            raise PdfStructureError(f"the stream keyword at {pos} is not followed by a line end")
        length = dictionary.get("Length")
        if isinstance(length, Ref) and not direct_length:
            length = self.resolve(length)
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            raise PdfStructureError(f"a stream at offset {pos} has no valid /Length")
        end = pos + length
        if not _keyword_at(data, _skip_space(data, end), b"endstream"):
            raise PdfStructureError(f"the stream at offset {pos} does not end after its /Length")
        return Stream(dictionary, data[pos:end])

    def resolve(self, value: Any) -> Any:
        """The object a reference leads to (None when nothing is there, as the spec says)."""
        if not isinstance(value, Ref):
            return value
        entry = self.entries.get(value.num)
        if entry is None:
            return None
        if isinstance(entry, _InFile):
            return self._object_at(entry.offset, value)[1]
        if value.gen != 0:
            return None
        data, offsets = self._object_stream(entry.stream_num)
        if value.num not in offsets:
            raise PdfStructureError(
                f"object {value.num} is not in the object stream {entry.stream_num}"
            )
        return parse_object(data, offsets[value.num])[0]

    def _object_stream(self, stream_num: int) -> tuple[bytes, dict[int, int]]:
        cached = self._object_streams.get(stream_num)
        if cached is not None:
            return cached
        entry = self.entries.get(stream_num)
        if not isinstance(entry, _InFile):
            raise PdfStructureError(f"object stream {stream_num} is not in the file")
        _num, stream = self._object_at(entry.offset, Ref(stream_num, entry.gen))
        if not isinstance(stream, Stream) or stream.dictionary.get("Type") != "ObjStm":
            raise PdfStructureError(f"object {stream_num} is not an object stream")
        if "Encrypt" in self.trailer:
            raise PdfStructureError("an encrypted object stream cannot be checked")
        count, first = stream.dictionary.get("N"), stream.dictionary.get("First")
        if not isinstance(count, int) or not isinstance(first, int) or count < 0 or first < 0:
            raise PdfStructureError(f"object stream {stream_num} lacks /N or /First")
        data = decode_stream(stream)
        numbers = re.findall(rb"\d+", data[:first])
        if len(numbers) < 2 * count:
            raise PdfStructureError(f"object stream {stream_num} has a short header")
        offsets = {int(numbers[2 * i]): first + int(numbers[2 * i + 1]) for i in range(count)}
        if any(offset >= len(data) for offset in offsets.values()):
            raise PdfStructureError(f"object stream {stream_num} points past its data")
        self._object_streams[stream_num] = (data, offsets)
        return data, offsets

    def _find_a_page(self, pages: Any) -> None:
        if not isinstance(pages, Ref):
            raise PdfStructureError("the catalog has no /Pages reference")
        pending: list[Any] = [pages]
        visited: set[Ref] = set()
        while pending:
            reference = pending.pop()
            if isinstance(reference, Ref):
                if reference in visited:
                    continue
                visited.add(reference)
            if len(visited) > _MAX_PAGE_NODES:
                break
            node = self.resolve(reference)
            if not isinstance(node, dict):
                continue
            if node.get("Type") == "Page":
                return
            kids = self.resolve(node.get("Kids"))
            if isinstance(kids, list):
                pending.extend(reversed(kids))
        raise PdfStructureError("no page object is reachable from /Root")
