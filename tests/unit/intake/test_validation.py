"""The validation corpus: each bad input refused with a message that names the problem."""

from __future__ import annotations

import io
import struct
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
from tests.pdf_samples import make_encrypted_pdf, make_pdf

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


@pytest.mark.parametrize("password", ["secret", ""])
def test_encrypted_pdf_is_refused(password: str) -> None:
    with pytest.raises(InvalidPdf, match="encrypted"):
        check_pdf(make_encrypted_pdf(user_password=password), LIMIT)


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
    with pytest.raises(InvalidPdf, match="not a regular file"):
        read_document(tmp_path, 100)


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
