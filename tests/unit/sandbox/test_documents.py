"""Upload rules: part names, PDF by content, size limit, file name characters, v1.0 JSON part."""

from __future__ import annotations

import pytest

from sandbox.documents import (
    filename_is_allowed,
    looks_like_pdf,
    parse_upload_v10,
    parse_upload_v11,
)
from sandbox.errors import ApiError
from tests.unit.sandbox.pdf_files import classic_pdf

PDF = classic_pdf()
FORM = "multipart/form-data; boundary=B0undary"
RELATED = 'multipart/related; type="application/json"; boundary=B0undary'


def form_part(
    name: str, value: bytes, filename: str | None = None, ctype: str | None = None
) -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = disposition + "\r\n" + (f"Content-Type: {ctype}\r\n" if ctype else "")
    return head.encode() + b"\r\n" + value


def multipart(*parts: bytes) -> bytes:
    return b"".join(b"--B0undary\r\n" + part + b"\r\n" for part in parts) + b"--B0undary--\r\n"


def v11(
    description: bytes = b"Diploma",
    file_name: str = "diploma.pdf",
    data: bytes = PDF,
    ctype: str = "application/pdf",
    extra: tuple[bytes, ...] = (),
) -> bytes:
    return multipart(
        form_part("Description", description),
        form_part("ValidFrom", b"2024-02-29"),
        form_part("file", data, file_name, ctype),
        *extra,
    )


def error_of(call: object) -> ApiError:
    assert isinstance(call, ApiError)
    return call


@pytest.mark.parametrize("name", ["diploma.pdf", "Cert 2024 (final), v1.pdf", "a_b-c$d.pdf", "X"])
def test_allowed_filenames(name: str) -> None:
    assert filename_is_allowed(name)


@pytest.mark.parametrize(
    "name", ["a/b.pdf", "a:b.pdf", "résumé.pdf", "a&b.pdf", "a#b.pdf", "a'b.pdf", "", "a\tb.pdf"]
)
def test_refused_filenames(name: str) -> None:
    assert not filename_is_allowed(name)


def test_pdf_is_recognised_by_content_not_name() -> None:
    assert looks_like_pdf(PDF)
    assert not looks_like_pdf(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    assert not looks_like_pdf(b"%PDF-1.4 but truncated without an end marker")
    assert looks_like_pdf(PDF + b"x" * 5000)  # bytes after %%EOF are ignored, as readers do
    assert not looks_like_pdf(PDF + b"5 0 obj\n<< /Type /Page")  # a revision cut off


def test_valid_v11_upload() -> None:
    upload = parse_upload_v11(FORM, v11(), 4_000_000)
    assert (upload.description, upload.valid_from, upload.filename) == (
        "Diploma",
        "2024-02-29",
        "diploma.pdf",
    )
    assert upload.data == PDF


def test_lower_case_part_name_is_refused() -> None:
    raw = multipart(
        form_part("description", b"x"), form_part("file", PDF, "a.pdf", "application/pdf")
    )
    with pytest.raises(ApiError) as caught:
        parse_upload_v11(FORM, raw, 4_000_000)
    assert caught.value.status == 400
    assert "description" in caught.value.errors


def test_unknown_extra_part_is_refused() -> None:
    with pytest.raises(ApiError, match="Unexpected part"):
        parse_upload_v11(FORM, v11(extra=(form_part("Comment", b"x"),)), 4_000_000)


def test_blank_description_is_refused() -> None:
    with pytest.raises(ApiError) as caught:
        parse_upload_v11(FORM, v11(description=b"   "), 4_000_000)
    assert "Description" in caught.value.errors


@pytest.mark.parametrize("value", [b"2024-02-30", b"01-02-2024", b"2024-1-1", b"2024-01-01T00:00"])
def test_bad_valid_from_is_refused(value: bytes) -> None:
    raw = multipart(
        form_part("Description", b"d"),
        form_part("ValidFrom", value),
        form_part("file", PDF, "a.pdf", "application/pdf"),
    )
    with pytest.raises(ApiError) as caught:
        parse_upload_v11(FORM, raw, 4_000_000)
    assert "ValidFrom" in caught.value.errors


def test_empty_valid_from_means_system_date() -> None:
    raw = multipart(
        form_part("Description", b"d"),
        form_part("ValidFrom", b""),
        form_part("file", PDF, "a.pdf", "application/pdf"),
    )
    assert parse_upload_v11(FORM, raw, 4_000_000).valid_from == ""


def test_file_part_must_be_application_pdf() -> None:
    with pytest.raises(ApiError, match="application/pdf"):
        parse_upload_v11(FORM, v11(ctype="application/octet-stream"), 4_000_000)


def test_file_part_needs_a_filename() -> None:
    raw = multipart(form_part("Description", b"d"), form_part("file", PDF, None, "application/pdf"))
    with pytest.raises(ApiError, match="filename"):
        parse_upload_v11(FORM, raw, 4_000_000)


def test_size_limit_is_inclusive() -> None:
    assert parse_upload_v11(FORM, v11(), len(PDF)).data == PDF
    with pytest.raises(ApiError, match="larger than the maximum"):
        parse_upload_v11(FORM, v11(), len(PDF) - 1)


def test_non_multipart_content_type_is_415() -> None:
    with pytest.raises(ApiError) as caught:
        parse_upload_v11("application/json", b"{}", 4_000_000)
    assert caught.value.status == 415


def test_v10_needs_related_not_form_data() -> None:
    with pytest.raises(ApiError) as caught:
        parse_upload_v10(FORM, v11(), 4_000_000)
    assert caught.value.status == 415


def v10(metadata: bytes, meta_type: str = "application/json; charset=UTF-8") -> bytes:
    return multipart(
        f"Content-Type: {meta_type}\r\n".encode() + b"\r\n" + metadata,
        b"Content-Type: application/pdf\r\n\r\n" + PDF,
    )


def test_valid_v10_upload() -> None:
    upload = parse_upload_v10(
        RELATED, v10(b'{"Description": "Cert", "ValidFrom": "2021-01-01"}'), 10**6
    )
    assert (upload.description, upload.valid_from, upload.data) == ("Cert", "2021-01-01", PDF)


@pytest.mark.parametrize(
    ("metadata", "meta_type"),
    [
        (b'{"description": "Cert"}', "application/json; charset=UTF-8"),
        (b'{"Description": "Cert", "Extra": 1}', "application/json"),
        (b'{"Description": "Cert"}', "text/plain"),
        (b"not json", "application/json"),
        (b'{"Description": "Cert", "ValidFrom": "2021-13-01"}', "application/json"),
    ],
)
def test_v10_metadata_rules(metadata: bytes, meta_type: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_upload_v10(RELATED, v10(metadata, meta_type), 10**6)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/related; boundary=B0undary",
        'multipart/related; type="text/plain"; boundary=B0undary',
        'multipart/related; type="application/json"; start="<meta>"; boundary=B0undary',
    ],
)
def test_v10_root_type_must_be_named_and_match(content_type: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_upload_v10(content_type, v10(b'{"Description": "Cert"}'), 10**6)
    assert caught.value.status == 400
    assert "Content-Type" in caught.value.errors


def test_v10_start_may_name_the_metadata_part() -> None:
    raw = multipart(
        b"Content-Type: application/json\r\nContent-ID: <meta>\r\n\r\n" + b'{"Description": "C"}',
        b"Content-Type: application/pdf\r\n\r\n" + PDF,
    )
    content_type = 'multipart/related; type="application/json"; start="<meta>"; boundary=B0undary'
    assert parse_upload_v10(content_type, raw, 10**6).description == "C"
