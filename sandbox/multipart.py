"""A strict multipart parser that keeps what a client really sent.

The standard library's form parsers forgive too much (and `cgi` is gone); the sandbox
must see exact part names, each part's own headers and the raw bytes, and refuse a body
that a strict server would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import HeaderParser

__all__ = ["MultipartError", "Part", "parse_media_type", "parse_multipart"]

_HEADER_PARSER = HeaderParser(policy=policy.HTTP)
_MAX_PARTS = 32
_MAX_HEADER_BLOCK = 16 * 1024


class MultipartError(ValueError):
    """The body is not well-formed multipart."""


@dataclass(frozen=True)
class Part:
    """One body part: its headers as sent, the parsed bits the API looks at, and the bytes."""

    headers: tuple[tuple[str, str], ...]
    content_type: str | None
    content_type_params: dict[str, str]
    disposition: str | None
    name: str | None
    filename: str | None
    data: bytes


def parse_media_type(header_value: str | None) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into its lower-cased media type and its parameters."""
    if not header_value:
        return "", {}
    message = _parse_headers(f"Content-Type: {header_value}\r\n\r\n")
    if message.get_content_type() == "text/plain" and not header_value.lower().startswith(
        "text/plain"
    ):
        # The email package falls back to text/plain for garbage; a server does not.
        return header_value.split(";", 1)[0].strip().lower(), {}
    params = {
        key.lower(): value
        for key, value in (message.get_params() or [])[1:]
        if isinstance(value, str)
    }
    return message.get_content_type(), params


def parse_multipart(body: bytes, boundary: str) -> list[Part]:
    """Split a multipart body strictly (RFC 2046): CRLF line ends, closing delimiter required."""
    if not boundary or len(boundary) > 70:
        raise MultipartError("missing or overlong boundary")
    delimiter = b"--" + boundary.encode("ascii", "strict")
    if not body.startswith(delimiter + b"\r\n"):
        # A preamble is legal but no HTTP client sends one; one that does is suspicious.
        first = body.find(b"\r\n" + delimiter + b"\r\n")
        if first < 0:
            raise MultipartError("body does not start with the boundary delimiter")
        body = body[first + 2 :]
    separator = b"\r\n" + delimiter
    closing = separator + b"--"
    end = body.rfind(closing)
    if end < 0:
        raise MultipartError("closing boundary delimiter missing")
    trailer = body[end + len(closing) :]
    if trailer not in (b"", b"\r\n"):
        raise MultipartError("data after the closing boundary")
    inner = body[len(delimiter) + 2 : end]
    chunks = inner.split(separator + b"\r\n")
    if len(chunks) > _MAX_PARTS:
        raise MultipartError("too many parts")
    return [_parse_part(chunk) for chunk in chunks]


def _parse_part(chunk: bytes) -> Part:
    head_end = chunk.find(b"\r\n\r\n")
    if chunk.startswith(b"\r\n"):
        head_bytes, data = b"", chunk[2:]
    elif head_end < 0:
        raise MultipartError("part headers are not terminated by an empty line")
    else:
        head_bytes, data = chunk[:head_end], chunk[head_end + 4 :]
    if len(head_bytes) > _MAX_HEADER_BLOCK:
        raise MultipartError("part headers too large")
    try:
        head_text = head_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MultipartError("part headers are not UTF-8") from exc
    headers: list[tuple[str, str]] = []
    for line in head_text.split("\r\n") if head_text else []:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or " " in name:
            raise MultipartError(f"malformed part header line {line!r}")
        headers.append((name, value.strip()))
    message = _parse_headers(head_text + "\r\n\r\n")
    content_type: str | None = None
    params: dict[str, str] = {}
    raw_type = _header(headers, "content-type")
    if raw_type is not None:
        content_type, params = parse_media_type(raw_type)
    disposition = (
        message.get_content_disposition() if _header(headers, "content-disposition") else None
    )
    raw_name = message.get_param("name", header="content-disposition")
    filename = message.get_filename()
    return Part(
        headers=tuple(headers),
        content_type=content_type,
        content_type_params=params,
        disposition=disposition,
        name=raw_name if isinstance(raw_name, str) else None,
        filename=filename,
        data=data,
    )


def _header(headers: list[tuple[str, str]], wanted: str) -> str | None:
    values = [value for name, value in headers if name.lower() == wanted]
    if len(values) > 1:
        raise MultipartError(f"part header {wanted!r} repeated")
    return values[0] if values else None


def _parse_headers(text: str) -> Message:
    return _HEADER_PARSER.parsestr(text)
