"""Real PDFs for tests, made with pypdf: distinct by text, and of an exact size on request;
and hand-built ones (`build_pdf`) for the structures pypdf does not write: object streams,
cross-reference streams, and the hostile shapes a producer must refuse."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable
from pathlib import Path

from pypdf import PdfWriter
from pypdf.actions import JavaScript, PageTrigger
from pypdf.constants import UserAccessPermissions
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    TextStringObject,
)

__all__ = [
    "ACTIVE_CONTENT",
    "A_PAGE",
    "build_pdf",
    "make_active_pdf",
    "make_encrypted_pdf",
    "make_huge_xref_pdf",
    "make_object_stream_bomb",
    "make_owner_locked_pdf",
    "make_pdf",
]

# The objects of a one-page document for `build_pdf`: 1 catalog, 2 pages, 3 the page.
A_PAGE: dict[int, bytes] = {
    1: b"<< /Type /Catalog /Pages 2 0 R >>",
    2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
}


def _render(pages: int, text: str, padding: int) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": text or "yfdocs test document", "/Producer": "tests"})
    if padding:
        # A long metadata string: the file stays a valid PDF, only bigger.
        info = writer._info.get_object()
        info[NameObject("/Padding")] = TextStringObject("x" * padding)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_pdf(
    path: Path | str | None = None,
    *,
    pages: int = 1,
    pad_to: int | None = None,
    text: str = "",
) -> bytes:
    """A valid PDF with `pages` blank pages; `text` makes its bytes (and hash) unique.

    `pad_to` gives exactly that many bytes. The bytes are written to `path` when given.
    """
    data = _render(pages, text, 0)
    if pad_to is not None:
        if pad_to < len(data) + 16:
            raise ValueError(f"pad_to={pad_to} is smaller than the bare PDF ({len(data)} bytes)")
        padding = pad_to - len(data) - 16
        for _ in range(8):
            data = _render(pages, text, padding)
            if len(data) == pad_to:
                break
            padding += pad_to - len(data)
        else:
            raise RuntimeError(f"could not pad a PDF to exactly {pad_to} bytes")
    if path is not None:
        Path(path).write_bytes(data)
    return data


def make_encrypted_pdf(
    path: Path | str | None = None,
    *,
    user_password: str = "secret",
    algorithm: str = "RC4-128",
    permissions: UserAccessPermissions | None = None,
) -> bytes:
    """A PDF protected with a password (RC4 by default: no extra crypto library needed).

    An empty `user_password` is a PDF locked with the owner password only: it opens
    without a password, and `permissions` says what a viewer should not allow.
    """
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.encrypt(
        user_password=user_password,
        owner_password="owner",
        algorithm=algorithm,
        permissions_flag=permissions if permissions is not None else UserAccessPermissions.all(),
    )
    buffer = io.BytesIO()
    writer.write(buffer)
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def make_owner_locked_pdf(path: Path | str | None = None, *, algorithm: str = "RC4-128") -> bytes:
    """A certificate as many LMSs issue it: opens without a password, printing and
    changing it are locked by the owner password."""
    return make_encrypted_pdf(
        path, user_password="", algorithm=algorithm, permissions=UserAccessPermissions(0)
    )


def build_pdf(
    objects: dict[int, bytes],
    *,
    compressed: Iterable[int] = (),
    inflated_padding: int = 0,
    declared_xref_size: int | None = None,
) -> bytes:
    """A PDF of these objects (numbered from 1, object 1 the catalog), written by hand.

    Objects named in `compressed` go into one FlateDecode object stream, found through a
    cross-reference stream (PDF 1.5), so that a byte scan of the file cannot see them;
    `inflated_padding` bytes of blanks follow them inside that stream (a compression bomb
    when large: it is compressed chunk by chunk, never held inflated). Without compressed
    objects the file has a classic xref table, whose declared size `declared_xref_size`
    may overstate.
    """
    inside = sorted(set(compressed))
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}

    def write(number: int, body: bytes) -> None:
        offsets[number] = len(out)
        out.extend(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    for number in sorted(set(objects) - set(inside)):
        write(number, objects[number])
    size = max(objects) + 1
    if not inside:
        xref_at = len(out)
        out.extend(b"xref\n0 %d\n0000000000 65535 f \n" % (declared_xref_size or size))
        for number in range(1, size):
            out.extend(b"%010d 00000 n \n" % offsets.get(number, 0))
        out.extend(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % size)
        out.extend(b"startxref\n%d\n%%%%EOF\n" % xref_at)
        return bytes(out)

    stream_number, xref_number = size, size + 1
    bodies, positions = b"", []
    for number in inside:
        positions.append(len(bodies))
        bodies += objects[number] + b"\n"
    header = b" ".join(b"%d %d" % (n, at) for n, at in zip(inside, positions, strict=True))
    first = len(header) + 1
    packer = zlib.compressobj(9)
    parts = [packer.compress(header + b"\n" + bodies)]
    chunk = b" " * (1 << 20)
    for start in range(0, inflated_padding, len(chunk)):
        parts.append(packer.compress(chunk[: inflated_padding - start]))
    parts.append(packer.flush())
    stream = b"".join(parts)
    write(
        stream_number,
        b"<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
        % (len(inside), first, len(stream))
        + stream
        + b"\nendstream",
    )
    xref_at = len(out)
    offsets[xref_number] = xref_at
    rows = [b"\x00" + bytes(4) + b"\xff\xff"]
    for number in range(1, xref_number + 1):
        if number in inside:
            rows.append(
                b"\x02" + stream_number.to_bytes(4, "big") + inside.index(number).to_bytes(2, "big")
            )
        else:
            rows.append(b"\x01" + offsets.get(number, 0).to_bytes(4, "big") + bytes(2))
    table = b"".join(rows)
    write(
        xref_number,
        b"<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n"
        % (xref_number + 1, len(table))
        + table
        + b"\nendstream",
    )
    out.extend(b"startxref\n%d\n%%%%EOF\n" % xref_at)
    return bytes(out)


def make_huge_xref_pdf() -> bytes:
    """A one-page PDF whose xref table declares a billion entries (a 450-byte file)."""
    return build_pdf(A_PAGE, declared_xref_size=999_999_999)


def make_object_stream_bomb(inflated_bytes: int = 300_000_000) -> bytes:
    """A PDF whose catalog lies in an object stream that inflates to `inflated_bytes`."""
    return build_pdf(A_PAGE, compressed=[1], inflated_padding=inflated_bytes)


def _action(kind: str, **entries: str) -> DictionaryObject:
    action = DictionaryObject({NameObject("/S"): NameObject(kind)})
    for key, value in entries.items():
        action[NameObject(f"/{key}")] = TextStringObject(value)
    return action


def _annotation(subtype: str, **entries: DictionaryObject | TextStringObject) -> DictionaryObject:
    annotation = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject(subtype),
            NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (72, 72, 144, 144)]),
        }
    )
    for key, value in entries.items():
        annotation[NameObject(f"/{key}")] = value
    return annotation


def _with_writer(change: str) -> bytes:
    writer = PdfWriter()
    page = writer.add_blank_page(width=595, height=842)
    alert = "app.alert('hello')"
    if change == "document-javascript":
        writer.add_open_action(JavaScript(alert))
    elif change == "open-action-javascript":
        writer.root_object[NameObject("/OpenAction")] = _action("/JavaScript", JS=alert)
    elif change == "page-open-javascript":
        page.add_action(PageTrigger.OPEN, JavaScript(alert))
    elif change == "link-javascript":
        writer.add_annotation(0, _annotation("/Link", A=_action("/JavaScript", JS=alert)))
    elif change == "launch":
        writer.root_object[NameObject("/OpenAction")] = _action("/Launch", F="cmd.exe")
    elif change == "embedded-file":
        writer.add_attachment("setup.exe", b"MZ\x90\x00 not really a program")
    elif change == "file-attachment":
        filespec = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Filespec"),
                NameObject("/F"): TextStringObject("payload.exe"),
            }
        )
        writer.add_annotation(0, _annotation("/FileAttachment", FS=filespec))
    elif change == "xfa-form":
        writer.root_object[NameObject("/AcroForm")] = DictionaryObject(
            {
                NameObject("/Fields"): ArrayObject(),
                NameObject("/XFA"): TextStringObject("<xdp:xdp/>"),
            }
        )
    elif change == "uri-link":
        link = _action("/URI", URI="https://lms.example/verify/123")
        writer.add_annotation(0, _annotation("/Link", A=link))
    else:
        raise ValueError(f"no such sample: {change}")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# Each sample of active content, and what the refusal must name.
ACTIVE_CONTENT: dict[str, str] = {
    "document-javascript": "JavaScript",
    "open-action-javascript": "JavaScript",
    "page-open-javascript": "JavaScript",
    "link-javascript": "JavaScript",
    "hidden-javascript": "JavaScript",
    "launch": "a Launch action",
    "embedded-file": "an embedded file",
    "file-attachment": "a file attachment annotation",
    "xfa-form": "an XFA form",
}


def make_active_pdf(kind: str) -> bytes:
    """A one-page PDF with one kind of active content (`ACTIVE_CONTENT`), or with a plain
    web link (`uri-link`), which is not active content.

    `hidden-javascript` puts an open action, its names hex-escaped, inside a compressed
    object stream: only a reader of the structure finds it, no scan of the bytes.
    """
    if kind != "hidden-javascript":
        return _with_writer(kind)
    catalog = (
        b"<< /Type /Catalog /Pages 2 0 R "
        b"/OpenAction << /S /J#61vaScript /J#53 (app.alert\\('hidden'\\)) >> >>"
    )
    return build_pdf({**A_PAGE, 1: catalog}, compressed=[1])
