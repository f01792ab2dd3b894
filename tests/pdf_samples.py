"""Real PDFs for tests, made with pypdf: distinct by text, and of an exact size on request."""

from __future__ import annotations

import io
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import NameObject, TextStringObject

__all__ = ["make_encrypted_pdf", "make_pdf"]


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


def make_encrypted_pdf(path: Path | str | None = None, *, user_password: str = "secret") -> bytes:
    """A PDF protected with a password (RC4, no extra crypto library needed)."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data
