"""The validation corpus: each bad input refused with a message that names the problem."""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import tracemalloc
import zlib
from datetime import date, datetime
from pathlib import Path

import pytest
from pypdf import PdfWriter

from api_client import DocumentType
from intake.validation import (
    MAX_FILE_NAME_LENGTH,
    EnqueueRejected,
    FileTooLarge,
    InvalidDescription,
    InvalidDocumentType,
    InvalidPdf,
    InvalidPersonCode,
    InvalidTenant,
    InvalidValidFrom,
    ValidationError,
    check_pdf,
    default_description,
    read_document,
    sanitise_file_name,
    validate_caller_key,
    validate_description,
    validate_document_type,
    validate_person_code,
    validate_tenant_id,
    validate_valid_from,
)
from tests.pdf_samples import (
    A_PAGE,
    ACTIVE_CONTENT,
    build_pdf,
    make_active_pdf,
    make_encrypted_pdf,
    make_huge_xref_pdf,
    make_object_stream_bomb,
    make_owner_locked_pdf,
    make_pdf,
)

LIMIT = 4_000_000


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def test_errors_form_one_tree() -> None:
    assert issubclass(ValidationError, EnqueueRejected)
    for cls in (InvalidPdf, FileTooLarge, InvalidDocumentType, InvalidPersonCode):
        assert issubclass(cls, ValidationError)


def test_a_valid_pdf_is_accepted() -> None:
    data = make_pdf(pages=3, text="ok")
    facts = check_pdf(data, LIMIT)
    assert facts.pages == 3
    assert facts.size_bytes == len(data)
    assert len(facts.sha256) == 64


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"Hello, this is plain text pretending to be a PDF\n", "not a PDF"),
        (png_bytes(), "not a PDF"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "not a PDF"),
    ],
    ids=["empty", "text", "png-renamed", "jpeg"],
)
def test_not_a_pdf(data: bytes, message: str) -> None:
    with pytest.raises(InvalidPdf, match=message) as info:
        check_pdf(data, LIMIT)
    assert info.value.field == "file"


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.9, 0.99])
def test_truncated_pdf_is_refused(keep: float) -> None:
    data = make_pdf(pages=2, text="truncate me")
    with pytest.raises(InvalidPdf, match=r"truncated|damaged"):
        check_pdf(data[: int(len(data) * keep)], LIMIT)


def test_pdf_with_a_broken_body_is_refused() -> None:
    data = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< >>\n%%EOF\n"
    with pytest.raises(InvalidPdf, match=r"damaged|no pages"):
        check_pdf(data, LIMIT)


def test_pdf_without_pages_is_refused() -> None:
    buffer = io.BytesIO()
    PdfWriter().write(buffer)
    with pytest.raises(InvalidPdf, match="no pages"):
        check_pdf(buffer.getvalue(), LIMIT)


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_a_pdf_that_needs_a_password_to_open_is_refused(algorithm: str) -> None:
    with pytest.raises(InvalidPdf, match="encrypted: it cannot be opened without a password"):
        check_pdf(make_encrypted_pdf(user_password="secret", algorithm=algorithm), LIMIT)


@pytest.mark.parametrize("algorithm", ["RC4-40", "RC4-128", "AES-128", "AES-256"])
def test_a_pdf_locked_by_its_owner_password_only_is_accepted(algorithm: str) -> None:
    """It opens without a password, as in any viewer; the upload sends it as it is."""
    data = make_owner_locked_pdf(algorithm=algorithm)
    facts = check_pdf(data, LIMIT)
    assert facts.pages == 1
    assert facts.sha256 == hashlib.sha256(data).hexdigest()


def test_exactly_the_limit_is_accepted_and_one_byte_more_refused() -> None:
    at_limit = make_pdf(pad_to=LIMIT, text="at limit")
    assert len(at_limit) == LIMIT
    assert check_pdf(at_limit, LIMIT).size_bytes == LIMIT
    over = make_pdf(pad_to=LIMIT + 1, text="over")
    with pytest.raises(FileTooLarge, match=r"4,000,001 bytes; the largest accepted is 4,000,000"):
        check_pdf(over, LIMIT)


def test_read_document_refuses_big_files_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF-" + b"0" * 200)
    with pytest.raises(FileTooLarge):
        read_document(big, 100)
    with pytest.raises(InvalidPdf, match="does not exist"):
        read_document(tmp_path / "missing.pdf", 100)
    with pytest.raises(InvalidPdf, match="not a regular file: it is a directory"):
        read_document(tmp_path, 100)


def _too_long_name(tmp_path: Path) -> str:
    return str(tmp_path / ("n" * 300 + ".pdf"))


def _symlink_loop(tmp_path: Path) -> str:
    (tmp_path / "loop-a.pdf").symlink_to(tmp_path / "loop-b.pdf")
    (tmp_path / "loop-b.pdf").symlink_to(tmp_path / "loop-a.pdf")
    return str(tmp_path / "loop-a.pdf")


def _through_a_file(tmp_path: Path) -> str:
    make_pdf(tmp_path / "valid.pdf", text="a file, not a folder")
    return str(tmp_path / "valid.pdf" / "inner.pdf")


def _trailing_slash(tmp_path: Path) -> str:
    make_pdf(tmp_path / "valid.pdf", text="a file named as a folder")
    return str(tmp_path / "valid.pdf") + "/"


def _nul_byte(tmp_path: Path) -> str:
    return str(tmp_path / "bad\x00name.pdf")


def _fifo(tmp_path: Path) -> str:
    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)
    return str(fifo)


HOSTILE_PATHS = {
    "name-too-long": (_too_long_name, "the name is too long"),
    "symlink-loop": (_symlink_loop, "symlink loop"),
    "through-a-file": (_through_a_file, "a part of the path is a file, not a directory"),
    "trailing-slash": (_trailing_slash, "names a directory (it ends in '/')"),
    "nul-byte": (_nul_byte, "contains a NUL character"),
    "fifo": (_fifo, "is not a regular file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_PATHS))
def test_hostile_paths_are_refused_with_a_line_naming_path_and_problem(
    tmp_path: Path, case: str
) -> None:
    make, message = HOSTILE_PATHS[case]
    path = make(tmp_path)
    with pytest.raises(InvalidPdf, match=re.escape(message)) as info:
        read_document(path, LIMIT)
    assert info.value.field == "file"
    assert str(tmp_path) in info.value.message or "..." in info.value.message
    assert "\n" not in info.value.message


def test_a_very_long_path_is_shortened_in_the_message(tmp_path: Path) -> None:
    with pytest.raises(InvalidPdf) as info:
        read_document(_too_long_name(tmp_path), LIMIT)
    assert len(info.value.message) < 300
    assert info.value.message.startswith(str(tmp_path)[:40])


def test_read_document_takes_str_and_path_alike(tmp_path: Path) -> None:
    data = make_pdf(tmp_path / "ok.pdf", text="either")
    assert read_document(tmp_path / "ok.pdf", LIMIT) == data
    assert read_document(str(tmp_path / "ok.pdf"), LIMIT) == data


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("diploma.pdf", "diploma.pdf"),
        ("Jan (2024), $5_x-y.pdf", "Jan (2024), $5_x-y.pdf"),
        ("Diplôma Jan?.pdf", "Diploma Jan_.pdf"),
        ("cert#1&2.PDF", "cert_1_2.pdf"),
        ("../../etc/passwd", "passwd.pdf"),
        ("C:\\Users\\jan\\cert.pdf", "cert.pdf"),
        ("report.docx", "report.docx.pdf"),
        ("???.pdf", "document.pdf"),
        ("", "document.pdf"),
        ("diploma<script>.pdf", "diploma_script_.pdf"),
        ("name\x00with\nnul.pdf", "name_with_nul.pdf"),
        ("  spaced .pdf", "spaced.pdf"),
    ],
)
def test_file_names_are_sanitised_and_the_original_kept(given: str, expected: str) -> None:
    name = sanitise_file_name(given)
    assert name.file_name == expected
    assert name.original_file_name == given.replace("\x00", "")  # PostgreSQL cannot hold NUL
    assert name.was_sanitised == (given != expected)


def test_long_file_names_are_capped() -> None:
    name = sanitise_file_name("a" * 500 + ".pdf")
    assert len(name.file_name) == MAX_FILE_NAME_LENGTH
    assert name.file_name.endswith("a.pdf")
    assert name.original_file_name == "a" * 500 + ".pdf"


@pytest.mark.parametrize("text", ["diploma", "DIPLOMA", "appraisalReview", "APPRAISAL_REVIEW"])
def test_document_types_parse(text: str) -> None:
    assert validate_document_type(text) in set(DocumentType)


@pytest.mark.parametrize("text", ["passport", "", "diplomas", "certificate/../x"])
def test_unknown_document_type(text: str) -> None:
    with pytest.raises(InvalidDocumentType, match="unknown document type") as info:
        validate_document_type(text)
    assert "careerOther" in info.value.message
    assert info.value.field == "document_type"


@pytest.mark.parametrize("code", ["P123", "000123", "a.b-c_d", "x" * 32])
def test_good_person_codes(code: str) -> None:
    assert validate_person_code(code) == code


@pytest.mark.parametrize(
    "code",
    ["../x", "a/b", "a?b", "a#b", "%2e", "%2e%2e", ".", "..", "", "x" * 33, "a b", "é", "a\n"],
)
def test_hostile_person_codes(code: str) -> None:
    with pytest.raises(InvalidPersonCode, match="invalid personCode") as info:
        validate_person_code(code)
    assert info.value.field == "person_code"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-02-30", "no such calendar date"),
        ("2024-13-01", "no such calendar date"),
        ("yesterday", "expected a date as YYYY-MM-DD"),
        ("01-02-2024", "expected a date as YYYY-MM-DD"),
        ("2024-1-5", "expected a date as YYYY-MM-DD"),
        ("2024-01-05T10:00", "expected a date as YYYY-MM-DD"),
    ],
)
def test_bad_dates(text: str, message: str) -> None:
    with pytest.raises(InvalidValidFrom, match=message):
        validate_valid_from(text)


def test_good_dates() -> None:
    assert validate_valid_from("2024-02-29") == date(2024, 2, 29)
    assert validate_valid_from(date(2024, 1, 1)) == date(2024, 1, 1)
    assert validate_valid_from(None) is None
    assert validate_valid_from("  ") is None
    with pytest.raises(InvalidValidFrom):
        validate_valid_from(datetime(2024, 1, 1))


def test_descriptions() -> None:
    assert validate_description("  First aid  ") == "First aid"
    assert validate_description("x" * 255) == "x" * 255
    with pytest.raises(InvalidDescription, match="empty"):
        validate_description("   ")
    with pytest.raises(InvalidDescription, match="256 characters; at most 255"):
        validate_description("x" * 256)
    with pytest.raises(InvalidDescription, match="control characters"):
        validate_description("bell\x07")


def test_default_description_names_type_and_file() -> None:
    assert default_description(DocumentType.DIPLOMA, "First aid 2024.pdf") == (
        "Diploma: First aid 2024"
    )
    assert len(default_description(DocumentType.CAREER_OTHER, "x" * 400 + ".pdf")) == 255


def test_tenants() -> None:
    assert validate_tenant_id(" 4028868 ") == "4028868"
    with pytest.raises(InvalidTenant, match="no tenant id"):
        validate_tenant_id(None)
    for bad in ("40-28", "../1", "t 1", "x" * 65):
        with pytest.raises(InvalidTenant, match="letters and digits"):
            validate_tenant_id(bad)


def test_caller_keys() -> None:
    assert validate_caller_key(" evt-1 ") == "evt-1"
    with pytest.raises(EnqueueRejected, match="empty"):
        validate_caller_key("")
    with pytest.raises(EnqueueRejected, match="at most 200"):
        validate_caller_key("k" * 201)
    with pytest.raises(EnqueueRejected, match="control"):
        validate_caller_key("a\tb")


def test_a_billion_entry_xref_table_is_refused_in_one_line() -> None:
    with pytest.raises(InvalidPdf, match="safety limit") as info:
        check_pdf(make_huge_xref_pdf(), LIMIT)
    assert "999999999" in info.value.message


def test_an_object_stream_bomb_is_refused_within_bounded_memory() -> None:
    """300 MB of inflated object stream in a 0.3 MB file: refused, holding a few MB."""
    bomb = make_object_stream_bomb(300_000_000)
    assert len(bomb) < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(InvalidPdf, match="safety limit"):
            check_pdf(bomb, 1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40_000_000, f"parsing held {peak:,} bytes"


def test_a_pdf_in_object_streams_is_still_accepted() -> None:
    """The limits refuse bombs, not the ordinary PDF 1.5 layout."""
    data = build_pdf(A_PAGE, compressed=[1, 2, 3])
    assert check_pdf(data, LIMIT).pages == 1


@pytest.mark.parametrize(
    "error",
    [OverflowError("int too large"), zlib.error("bad data"), struct.error("unpack"), KeyError()],
    ids=["overflow", "zlib", "struct", "bare-keyerror"],
)
def test_whatever_the_parser_raises_is_a_refusal(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def reader(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr("intake.validation.PdfReader", reader)
    with pytest.raises(InvalidPdf, match=r"damaged and cannot be read: .+"):
        check_pdf(make_pdf(text="fine"), LIMIT)


@pytest.mark.parametrize(
    "tail",
    [b"\x00" * 2048, b"\r\n-- \r\nSent through the LMS mail gateway\r\n" * 100, b"%%EOF\n" * 300],
    ids=["zero-padding", "mail-footer", "repeated-eof"],
)
def test_bytes_after_the_last_eof_are_allowed_as_readers_allow_them(tail: bytes) -> None:
    data = make_pdf(text="padded") + tail
    assert len(tail) > 1024
    assert check_pdf(data, LIMIT).pages == 1


def test_a_revision_cut_off_after_an_earlier_eof_is_truncated() -> None:
    """An incremental update whose own %%EOF never arrived: only its first part is there."""
    data = make_pdf(text="first revision") + b"4 0 obj\n<< /Type /Annot /Subtype /Text"
    with pytest.raises(InvalidPdf, match="truncated: its last revision ends without"):
        check_pdf(data, LIMIT)


FULL_WIDTH = "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in "2024-01-01")
ARABIC_INDIC = "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in "2024-01-01")


@pytest.mark.parametrize(
    "text",
    [FULL_WIDTH, ARABIC_INDIC, "2024-0" + chr(0xFF11) + "-01"],
    ids=["full-width", "arabic-indic", "one-full-width-digit"],
)
def test_dates_in_other_digits_are_refused_as_such(text: str) -> None:
    with pytest.raises(InvalidValidFrom, match="in ASCII digits, as YYYY-MM-DD"):
        validate_valid_from(text)


@pytest.mark.parametrize("kind", sorted(ACTIVE_CONTENT))
def test_active_content_is_refused_naming_what_was_found(kind: str) -> None:
    with pytest.raises(InvalidPdf, match="contains active content") as info:
        check_pdf(make_active_pdf(kind), LIMIT)
    assert f"({ACTIVE_CONTENT[kind]})" in info.value.message
    assert "YFDOCS_PDF_ACTIVE_CONTENT" in info.value.message


@pytest.mark.parametrize("kind", sorted(ACTIVE_CONTENT))
def test_active_content_is_accepted_when_the_policy_allows_it(kind: str) -> None:
    assert check_pdf(make_active_pdf(kind), LIMIT, refuse_active_content=False).pages == 1


def test_a_plain_web_link_is_not_active_content() -> None:
    """Certificates link to a verification page; following a link is the reader's choice."""
    assert check_pdf(make_active_pdf("uri-link"), LIMIT).pages == 1


def test_javascript_hidden_in_an_object_stream_is_found() -> None:
    data = make_active_pdf("hidden-javascript")
    assert b"JavaScript" not in data  # compressed, and the names hex-escaped
    with pytest.raises(InvalidPdf, match=r"\(JavaScript\)"):
        check_pdf(data, LIMIT)


def test_everything_found_is_named_once() -> None:
    catalog = (
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /Launch /F (a.exe) "
        b"/Next << /S /JavaScript /JS (x) >> >> /AA << /WC << /S /JavaScript /JS (y) >> >> >>"
    )
    with pytest.raises(InvalidPdf, match="active content") as info:
        check_pdf(build_pdf({**A_PAGE, 1: catalog}), LIMIT)
    named = info.value.message.split("(", 1)[1].split(")", 1)[0]
    assert sorted(named.split(", ")) == ["JavaScript", "a Launch action"]


def test_a_structure_too_large_to_inspect_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("intake.validation.MAX_INSPECTED_CONTAINERS", 50)
    nested = b"[" + b"[[] []] " * 60 + b"]"
    catalog = b"<< /Type /Catalog /Pages 2 0 R /Extra 4 0 R >>"
    data = build_pdf({**A_PAGE, 1: catalog, 4: nested})
    with pytest.raises(InvalidPdf, match="more than 50 dictionaries and arrays to inspect"):
        check_pdf(data, LIMIT)
    assert check_pdf(data, LIMIT, refuse_active_content=False).pages == 1
