"""Streaming multipart bodies: exact bytes, known length, the file read in chunks."""

from __future__ import annotations

import email
import email.parser
import email.policy
import io
import json
import tracemalloc
from datetime import date
from pathlib import Path

import pytest

from api_client import DocumentType
from api_client.documents import UploadPdf, form_data_body, related_body
from api_client.multipart import CHUNK_SIZE, BytesPart, FilePart, MultipartBody, new_boundary


def _drain(body: MultipartBody, size: int = 8192) -> bytes:
    out = bytearray()
    while chunk := body.read(size):
        assert len(chunk) <= size
        out += chunk
    return bytes(out)


def test_exact_bytes_for_a_small_file(tmp_path: Path) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF-1.4 tiny")
    body = MultipartBody(
        [
            BytesPart([("Content-Disposition", 'form-data; name="Description"')], b"Hi"),
            FilePart(
                [
                    ("Content-Disposition", 'form-data; name="file"; filename="a.pdf"'),
                    ("Content-Type", "application/pdf"),
                ],
                path,
                13,
            ),
        ],
        boundary="BOUND",
    )
    expected = (
        b"--BOUND\r\n"
        b'Content-Disposition: form-data; name="Description"\r\n'
        b"\r\n"
        b"Hi\r\n"
        b"--BOUND\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
        b"Content-Type: application/pdf\r\n"
        b"\r\n"
        b"%PDF-1.4 tiny\r\n"
        b"--BOUND--\r\n"
    )
    assert len(body) == len(expected)
    assert _drain(body, 5) == expected
    assert body.bytes_produced == len(expected)
    assert body.read(10) == b""
    assert body.content_type == "multipart/form-data; boundary=BOUND"


@pytest.mark.parametrize("size", [0, 1, 8191, 8192, 65536, 65537, 300_001])
def test_length_equals_bytes_produced(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f.pdf"
    path.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    body = form_data_body("d", None, UploadPdf(path, size, "f.pdf"))
    data = _drain(body, 7000)
    assert len(data) == len(body)
    assert b"\r\n\r\n" + path.read_bytes() + b"\r\n--" in data


def test_file_is_streamed_not_loaded(tmp_path: Path) -> None:
    size = 24 * 1024 * 1024
    path = tmp_path / "big.pdf"
    with path.open("wb") as handle:
        handle.truncate(size)
    body = form_data_body("d", None, UploadPdf(path, size, "big.pdf"))
    tracemalloc.start()
    try:
        total = 0
        while chunk := body.read(16384):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == len(body)
    assert peak < 1024 * 1024, f"peak {peak} bytes: the file was not streamed"


def test_a_stream_is_sent_in_chunks_and_again_for_a_fresh_body() -> None:
    content = bytes(range(256)) * 4000
    stream = io.BytesIO(content)
    first = _drain(form_data_body("d", None, UploadPdf(stream, len(content), "s.pdf")), 7000)
    second = form_data_body("d", None, UploadPdf(stream, len(content), "s.pdf"))
    chunks = list(second)
    assert max(len(chunk) for chunk in chunks) <= CHUNK_SIZE
    assert b"\r\n\r\n" + content + b"\r\n--" in first
    assert len(b"".join(chunks)) == len(second)


def test_a_stream_shorter_than_its_size_is_detected() -> None:
    with pytest.raises(OSError, match="document stream shrank"):
        _drain(form_data_body("d", None, UploadPdf(io.BytesIO(b"12345"), 10, "f.pdf")))


def test_changed_file_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "f.pdf"
    path.write_bytes(b"12345")
    body = form_data_body("d", None, UploadPdf(path, 10, "f.pdf"))
    with pytest.raises(OSError, match="shrank"):
        _drain(body)
    grown = form_data_body("d", None, UploadPdf(path, 3, "f.pdf"))
    with pytest.raises(OSError, match="grew"):
        _drain(grown)


def test_boundary_is_long_and_random() -> None:
    first, second = new_boundary(), new_boundary()
    assert first != second
    assert 60 <= len(first) <= 70


def test_header_injection_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        MultipartBody([BytesPart([("X", "a\r\nEvil: 1")], b"")])


def _parse(content_type: str, data: bytes) -> list[email.message.Message]:
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + data
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.is_multipart()
    return list(message.iter_parts())  # type: ignore[attr-defined]


def test_v11_parts(tmp_path: Path) -> None:
    path = tmp_path / "x.pdf"
    path.write_bytes(b"%PDF-1.7 data")
    body = form_data_body("Diploma Jan", date(2024, 5, 6), UploadPdf(path, 13, "Diploma 2024.pdf"))
    parts = _parse(body.content_type, _drain(body))
    assert [p.get_param("name", header="content-disposition") for p in parts] == [
        "Description",
        "ValidFrom",
        "file",
    ]
    assert parts[0].get_payload(decode=True) == b"Diploma Jan"
    assert parts[1].get_payload(decode=True) == b"2024-05-06"
    assert parts[2].get_filename() == "Diploma 2024.pdf"
    assert parts[2].get_content_type() == "application/pdf"
    assert parts[2].get_payload(decode=True) == b"%PDF-1.7 data"


def test_v11_empty_valid_from(tmp_path: Path) -> None:
    path = tmp_path / "x.pdf"
    path.write_bytes(b"%PDF")
    data = _drain(form_data_body("d", None, UploadPdf(path, 4, "x.pdf")))
    assert b'name="ValidFrom"\r\n\r\n\r\n--' in data


def test_v10_parts(tmp_path: Path) -> None:
    path = tmp_path / "x.pdf"
    path.write_bytes(b"%PDF-1.7 data")
    body = related_body("Cert ü", date(2021, 1, 1), UploadPdf(path, 13, "x.pdf"))
    assert body.content_type == (
        f'multipart/related; type="application/json"; boundary={body.boundary}'
    )
    data = _drain(body)
    assert data.startswith(
        f"--{body.boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode()
    )
    parts = _parse(body.content_type, data)
    assert json.loads(parts[0].get_payload(decode=True)) == {
        "Description": "Cert ü",
        "ValidFrom": "2021-01-01",
    }
    assert parts[1].get_content_type() == "application/pdf"
    assert parts[1].get_payload(decode=True) == b"%PDF-1.7 data"
    no_date = related_body("c", None, UploadPdf(path, 13, "x.pdf"))
    assert b'{"Description": "c"}' in _drain(no_date)


@pytest.mark.parametrize(
    ("text", "member"),
    [
        ("diploma", DocumentType.DIPLOMA),
        ("DIPLOMA", DocumentType.DIPLOMA),
        ("appraisalReview", DocumentType.APPRAISAL_REVIEW),
        ("APPRAISAL_REVIEW", DocumentType.APPRAISAL_REVIEW),
        ("appraisal-review", DocumentType.APPRAISAL_REVIEW),
        (" careermail ", DocumentType.CAREER_MAIL),
        (DocumentType.CAREER_OTHER, DocumentType.CAREER_OTHER),
    ],
)
def test_document_type_parse(text: str, member: DocumentType) -> None:
    assert DocumentType.parse(text) is member


def test_document_type_parse_lists_valid_values() -> None:
    with pytest.raises(ValueError, match="unknown document type") as info:
        DocumentType.parse("cv")
    for member in DocumentType:
        assert member.value in str(info.value)
    assert len(DocumentType) == 7


def test_related_body_without_a_root_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.pdf"
    path.write_bytes(b"%PDF-1.7 data")
    part = FilePart([("Content-Type", "application/pdf")], path, 13)
    with pytest.raises(ValueError, match="root_type"):
        MultipartBody([part], subtype="related")
    with pytest.raises(ValueError, match="media type"):
        MultipartBody([part], subtype="related", root_type='application/json"; x="y')


def test_the_email_parser_reads_the_related_type(tmp_path: Path) -> None:
    path = tmp_path / "x.pdf"
    path.write_bytes(b"%PDF-1.7 data")
    body = related_body("c", None, UploadPdf(path, 13, "x.pdf"))
    message = email.message_from_bytes(
        f"Content-Type: {body.content_type}\r\n\r\n".encode() + _drain(body),
        policy=email.policy.HTTP,
    )
    assert message.get_param("type") == "application/json"
    assert message.get_param("boundary") == body.boundary
    first = next(iter(message.iter_parts()))
    assert first.get_content_type() == message.get_param("type")
