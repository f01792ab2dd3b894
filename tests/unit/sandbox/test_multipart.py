"""The strict multipart parser: exact names, part headers and bytes, malformed bodies refused."""

from __future__ import annotations

import pytest

from sandbox.multipart import MultipartError, parse_media_type, parse_multipart

BOUNDARY = "xYzBoundary"


def body(*parts: bytes, closing: bytes = b"--xYzBoundary--\r\n") -> bytes:
    return b"".join(b"--xYzBoundary\r\n" + part + b"\r\n" for part in parts) + closing


def test_parts_keep_exact_names_filenames_types_and_bytes() -> None:
    raw = body(
        b'Content-Disposition: form-data; name="Description"\r\n\r\nMy diploma',
        b'Content-Disposition: form-data; name="file"; filename="a b.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n%PDF-\r\n\x00\xff%%EOF",
    )
    first, second = parse_multipart(raw, BOUNDARY)
    assert (first.name, first.filename, first.content_type, first.data) == (
        "Description",
        None,
        None,
        b"My diploma",
    )
    assert second.name == "file"
    assert second.filename == "a b.pdf"
    assert second.content_type == "application/pdf"
    assert second.data == b"%PDF-\r\n\x00\xff%%EOF"
    assert ("Content-Type", "application/pdf") in second.headers


def test_part_name_case_is_preserved() -> None:
    (part,) = parse_multipart(
        body(b'Content-Disposition: form-data; name="description"\r\n\r\nx'), BOUNDARY
    )
    assert part.name == "description"


def test_missing_closing_delimiter_is_refused() -> None:
    raw = body(b'Content-Disposition: form-data; name="a"\r\n\r\nx', closing=b"")
    with pytest.raises(MultipartError, match="closing"):
        parse_multipart(raw, BOUNDARY)


def test_wrong_boundary_is_refused() -> None:
    raw = body(b'Content-Disposition: form-data; name="a"\r\n\r\nx')
    with pytest.raises(MultipartError):
        parse_multipart(raw, "other")


def test_bare_lf_line_ends_are_refused() -> None:
    raw = b'--xYzBoundary\nContent-Disposition: form-data; name="a"\n\nx\n--xYzBoundary--\n'
    with pytest.raises(MultipartError):
        parse_multipart(raw, BOUNDARY)


def test_part_without_header_terminator_is_refused() -> None:
    raw = b'--xYzBoundary\r\nContent-Disposition: form-data; name="a"\r\n--xYzBoundary--\r\n'
    with pytest.raises(MultipartError):
        parse_multipart(raw, BOUNDARY)


def test_repeated_part_header_is_refused() -> None:
    raw = body(
        b'Content-Disposition: form-data; name="a"\r\nContent-Type: text/plain\r\n'
        b"Content-Type: application/pdf\r\n\r\nx"
    )
    with pytest.raises(MultipartError, match="repeated"):
        parse_multipart(raw, BOUNDARY)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("multipart/form-data; boundary=abc", ("multipart/form-data", {"boundary": "abc"})),
        ('Multipart/Related; boundary="q r"', ("multipart/related", {"boundary": "q r"})),
        ("application/json; charset=UTF-8", ("application/json", {"charset": "UTF-8"})),
        ("nonsense", ("nonsense", {})),
        (None, ("", {})),
    ],
)
def test_parse_media_type(header: str | None, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_media_type(header) == expected
