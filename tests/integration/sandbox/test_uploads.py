"""Uploads over real HTTP: the documented answer, and every rule the real API enforces."""

from __future__ import annotations

import re

import pytest
import requests

from sandbox import SandboxServer
from tests.integration.sandbox.wire import (
    OTHER_TENANT,
    PDF,
    PNG,
    TIMEOUT,
    UPLOAD_FIELDS,
    admin,
    api_headers,
    assert_youforce_error,
    get_token,
    minimal_pdf,
    raw_request,
    upload_v10,
    upload_v11,
)
from tests.pdf_samples import make_pdf
from tests.plugins.sandbox_fixtures import SandboxFactory
from tests.unit.sandbox.pdf_files import PdfLayout, build_pdf, incremental_update
from yfdocs.sample_documents import render_text_pdf

SEVEN_TYPES = [
    "certificate",
    "diploma",
    "appraisalReview",
    "performanceReview",
    "careerAgreement",
    "careerMail",
    "careerOther",
]
CREATION_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}")


@pytest.fixture
def token(sandbox: SandboxServer) -> str:
    return get_token(sandbox)


@pytest.mark.parametrize("doc_type", SEVEN_TYPES)
def test_v11_upload_answers_the_documented_shape(
    sandbox: SandboxServer, token: str, doc_type: str
) -> None:
    response = upload_v11(sandbox, token, doc_type=doc_type, description=f"A {doc_type}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert tuple(body) == UPLOAD_FIELDS
    assert body["description"] == f"A {doc_type}"
    assert body["size"] == len(PDF)
    assert body["tenantId"] == "4028868"
    assert CREATION_RE.fullmatch(body["creationDateTime"])
    assert body["status"] == "InProgress"
    assert body["errorMessages"] == []
    tickets = admin(sandbox, "tickets")["tickets"]
    assert [(t["ticket_id"], t["document_type"]) for t in tickets] == [(body["ticketId"], doc_type)]


def test_v10_certificate_upload(sandbox: SandboxServer, token: str) -> None:
    response = upload_v10(sandbox, token, {"Description": "Cert", "ValidFrom": "2021-01-01"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert tuple(body) == UPLOAD_FIELDS
    assert (body["description"], body["size"], body["status"]) == ("Cert", len(PDF), "InProgress")


@pytest.mark.parametrize(
    "type_parameter",
    [None, '"text/plain"', '"application/pdf"', '""', "application/json"],
    ids=repr,
)
def test_v10_needs_the_root_type_parameter(
    sandbox: SandboxServer, token: str, type_parameter: str | None
) -> None:
    response = upload_v10(sandbox, token, {"Description": "Cert"}, type_parameter=type_parameter)
    body = assert_youforce_error(response, 400)
    assert "type parameter" in body["errors"]["Content-Type"][0]
    assert admin(sandbox, "tickets")["tickets"] == []


@pytest.mark.parametrize("type_parameter", ['"application/json"', '"Application/JSON"'])
def test_v10_type_parameter_in_any_case(
    sandbox: SandboxServer, token: str, type_parameter: str
) -> None:
    response = upload_v10(sandbox, token, {"Description": "Cert"}, type_parameter=type_parameter)
    assert response.status_code == 200, response.text


def test_v10_accepts_certificates_only(sandbox: SandboxServer, token: str) -> None:
    response = upload_v10(sandbox, token, {"Description": "D"}, doc_type="diploma")
    assert_youforce_error(response, 404)


def test_v10_with_form_data_is_refused(sandbox: SandboxServer, token: str) -> None:
    response = requests.post(
        f"{sandbox.url}/learning/v1.0/employees/191166/documents/certificate",
        headers=api_headers(token),
        files=[("Description", (None, "d")), ("file", ("a.pdf", PDF, "application/pdf"))],
        timeout=TIMEOUT,
    )
    assert_youforce_error(response, 415)


def test_v10_lower_case_metadata_key_is_refused(sandbox: SandboxServer, token: str) -> None:
    response = upload_v10(sandbox, token, {"description": "Cert"})
    assert_youforce_error(response, 400)


def test_lower_case_part_name_is_400_problem_details(sandbox: SandboxServer, token: str) -> None:
    response = upload_v11(
        sandbox,
        token,
        files=[
            ("description", (None, "Diploma")),
            ("file", ("diploma.pdf", PDF, "application/pdf")),
        ],
    )
    body = assert_youforce_error(response, 400)
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert body["status"] == 400
    assert "description" in body["errors"]


def test_missing_description_is_400(sandbox: SandboxServer, token: str) -> None:
    response = upload_v11(sandbox, token, files=[("file", ("diploma.pdf", PDF, "application/pdf"))])
    assert "Description" in assert_youforce_error(response, 400)["errors"]


def test_png_named_pdf_is_refused(sandbox: SandboxServer, token: str) -> None:
    response = upload_v11(sandbox, token, filename="photo.pdf", data=PNG)
    body = assert_youforce_error(response, 400)
    assert "PDF" in body["errors"]["file"][0]


NOT_PDFS = {
    "47-byte": b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF",
    "html-between-markers": b"%PDF-1.7\n<html><body>Certificate</body></html>\n%%EOF\n",
    "truncated": make_pdf(text="cut short")[:-300],
    "no-page": PDF.replace(b"/Kids [3 0 R]", b"/Kids [2 0 R]"),
}


@pytest.mark.parametrize("data", NOT_PDFS.values(), ids=NOT_PDFS.keys())
def test_a_file_without_pdf_structure_is_refused(
    sandbox: SandboxServer, token: str, data: bytes
) -> None:
    body = assert_youforce_error(upload_v11(sandbox, token, data=data), 400)
    assert "not a valid PDF" in body["errors"]["file"][0]
    assert admin(sandbox, "tickets")["tickets"] == []


PDFS = {
    "pypdf": make_pdf(text="pypdf"),
    "pypdf-incremental": incremental_update(make_pdf(text="base"), "updated"),
    "object-stream": build_pdf(PdfLayout(xref="stream", object_stream=True, predictor=True)),
    "hybrid": build_pdf(PdfLayout(object_stream=True, hybrid=True)),
    "demo": render_text_pdf("Certificate", ["Jan Jansen"]),
}


@pytest.mark.parametrize("data", PDFS.values(), ids=PDFS.keys())
def test_pdfs_of_every_layout_get_a_ticket(sandbox: SandboxServer, token: str, data: bytes) -> None:
    response = upload_v11(sandbox, token, data=data)
    assert response.status_code == 200, response.text
    assert response.json()["size"] == len(data)


def test_wrong_file_part_content_type_is_refused(sandbox: SandboxServer, token: str) -> None:
    response = upload_v11(sandbox, token, file_type="application/octet-stream")
    assert "file" in assert_youforce_error(response, 400)["errors"]


def test_file_one_byte_over_the_limit_is_refused(sandbox: SandboxServer, token: str) -> None:
    too_big = upload_v11(sandbox, token, data=minimal_pdf(4_000_001))
    assert "maximum" in assert_youforce_error(too_big, 400)["errors"]["file"][0]
    at_limit = upload_v11(sandbox, token, data=minimal_pdf(4_000_000))
    assert at_limit.status_code == 200
    assert at_limit.json()["size"] == 4_000_000


@pytest.mark.parametrize("filename", ["diploma#1.pdf", "cv/2024.pdf", "résumé.pdf", "a&b.pdf"])
def test_filename_with_forbidden_characters_is_refused(
    sandbox: SandboxServer, token: str, filename: str
) -> None:
    response = upload_v11(sandbox, token, filename=filename)
    assert "file" in assert_youforce_error(response, 400)["errors"]


def test_filename_with_allowed_punctuation_is_accepted(sandbox: SandboxServer, token: str) -> None:
    response = upload_v11(sandbox, token, filename="Diploma 2024 (final), v1.2_$-x.pdf")
    assert response.status_code == 200


def test_bad_valid_from_is_refused(sandbox: SandboxServer, token: str) -> None:
    response = upload_v11(sandbox, token, valid_from="2024-02-30")
    assert "ValidFrom" in assert_youforce_error(response, 400)["errors"]


@pytest.mark.parametrize("doc_type", ["Diploma", "certificates", "cv"])
def test_unknown_document_type_is_404(sandbox: SandboxServer, token: str, doc_type: str) -> None:
    assert_youforce_error(upload_v11(sandbox, token, doc_type=doc_type), 404, "NotFound")


def test_unknown_person_is_404(sandbox: SandboxServer, token: str) -> None:
    body = assert_youforce_error(upload_v11(sandbox, token, person="000000"), 404, "NotFound")
    assert body["statusCode"] == 404


def test_person_of_another_tenant_is_404(sandbox: SandboxServer) -> None:
    other_token = get_token(sandbox, tenant=OTHER_TENANT)
    response = upload_v11(sandbox, other_token, tenant=OTHER_TENANT)
    assert_youforce_error(response, 404)


def test_wrong_tenant_header_is_403(sandbox: SandboxServer, token: str) -> None:
    assert_youforce_error(upload_v11(sandbox, token, tenant=OTHER_TENANT), 403, "Forbidden")


def test_missing_tenant_header_is_400(sandbox: SandboxServer, token: str) -> None:
    body = assert_youforce_error(upload_v11(sandbox, token, tenant=None), 400)
    assert "X-Raet-Tenant-Id" in body["errors"]


def test_no_token_is_401(sandbox: SandboxServer) -> None:
    body = assert_youforce_error(upload_v11(sandbox, None), 401)
    assert set(body["error"]) == {"message", "correlationId", "issuedAt", "errorCode"}


def test_unknown_token_is_401(sandbox: SandboxServer) -> None:
    assert_youforce_error(upload_v11(sandbox, "not-a-token"), 401)


def test_revoked_token_is_401(sandbox: SandboxServer, token: str) -> None:
    assert upload_v11(sandbox, token).status_code == 200
    assert admin(sandbox, "revoke-tokens")["revoked"] == 1
    assert_youforce_error(upload_v11(sandbox, token), 401)
    assert upload_v11(sandbox, get_token(sandbox)).status_code == 200


def test_form_urlencoded_upload_is_415(sandbox: SandboxServer, token: str) -> None:
    response = requests.post(
        f"{sandbox.url}/learning/v1.1/employees/191166/documents/diploma",
        headers=api_headers(token),
        data={"Description": "d"},
        timeout=TIMEOUT,
    )
    assert_youforce_error(response, 415)


def test_upload_without_the_upload_scope_is_403(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    token = get_token(server, scope="Invitation_only Get_Basic")
    assert_youforce_error(upload_v11(server, token), 403)


def test_get_on_an_upload_path_is_405(sandbox: SandboxServer, token: str) -> None:
    response = requests.get(
        f"{sandbox.url}/learning/v1.1/employees/191166/documents/diploma",
        headers=api_headers(token),
        timeout=TIMEOUT,
    )
    assert_youforce_error(response, 405)


def form_data_upload() -> tuple[bytes, str]:
    """A valid v1.1 body and its Content-Type, built by hand for a raw request."""
    request = requests.Request(
        "POST",
        "http://127.0.0.1/",
        files=[
            ("Description", (None, "Diploma")),
            ("ValidFrom", (None, "")),
            ("file", ("diploma.pdf", PDF, "application/pdf")),
        ],
    ).prepare()
    assert isinstance(request.body, bytes)
    return request.body, request.headers["Content-Type"]


@pytest.mark.parametrize("person", ["191%31%36%36", "%31%39%31%31%36%36", "19116%36"])
def test_a_percent_encoded_person_code_is_not_decoded(
    sandbox: SandboxServer, token: str, person: str
) -> None:
    body, content_type = form_data_upload()
    answer = raw_request(
        sandbox,
        "POST",
        f"/learning/v1.1/employees/{person}/documents/diploma",
        {**api_headers(token), "Content-Type": content_type},
        body,
    )
    assert answer.status_code == 404, answer.body
    assert answer.json()["errorCode"] == "NotFound"
    assert admin(sandbox, "tickets")["tickets"] == []


def test_a_percent_encoded_document_type_is_not_decoded(sandbox: SandboxServer, token: str) -> None:
    body, content_type = form_data_upload()
    answer = raw_request(
        sandbox,
        "POST",
        "/learning/v1.1/employees/191166/documents/%64iploma",
        {**api_headers(token), "Content-Type": content_type},
        body,
    )
    assert answer.status_code == 404
    assert admin(sandbox, "tickets")["tickets"] == []
