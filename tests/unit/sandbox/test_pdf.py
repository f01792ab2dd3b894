"""The sandbox's PDF check follows the structure to a page, whatever layout a writer chose."""

from __future__ import annotations

import io
import zlib

import pytest
from pypdf import PdfReader

from sandbox.pdf import PdfStructureError, check_pdf_structure, pdf_structure_problem
from tests.pdf_samples import make_encrypted_pdf, make_pdf
from tests.unit.sandbox.pdf_files import PdfLayout, build_pdf, classic_pdf, incremental_update
from yfdocs.sample_documents import render_text_pdf

LAYOUTS = [
    PdfLayout(),
    PdfLayout(xref="stream"),
    PdfLayout(xref="stream", predictor=True),
    PdfLayout(xref="stream", object_stream=True),
    PdfLayout(xref="stream", object_stream=True, predictor=True),
    PdfLayout(object_stream=True, hybrid=True),
    PdfLayout(object_stream=True, hybrid=True, predictor=True),
]


def problem_of(data: bytes) -> str:
    with pytest.raises(PdfStructureError) as caught:
        check_pdf_structure(data)
    return str(caught.value)


@pytest.mark.parametrize("layout", LAYOUTS, ids=repr)
def test_every_layout_passes(layout: PdfLayout) -> None:
    data = build_pdf(layout)
    assert len(PdfReader(io.BytesIO(data), strict=True).pages) == 1  # the builder is sound
    assert pdf_structure_problem(data) is None


@pytest.mark.parametrize(
    "data",
    [
        make_pdf(),
        make_pdf(pages=3, text="three pages"),
        make_pdf(pad_to=50_000),
        make_encrypted_pdf(),
        render_text_pdf("Certificate", ["Jan Jansen", "Python for HR"]),
        classic_pdf(4_000_000),
    ],
    ids=["pypdf", "pypdf-3-pages", "pypdf-padded", "pypdf-encrypted", "demo", "4-MB"],
)
def test_the_projects_own_pdfs_pass(data: bytes) -> None:
    assert pdf_structure_problem(data) is None


def test_incremental_updates_pass() -> None:
    once = incremental_update(make_pdf(text="original"), "first update")
    twice = incremental_update(once, "second update")
    assert b"/XRef" in twice
    assert twice.count(b"startxref") == 3
    assert pdf_structure_problem(once) is None
    assert pdf_structure_problem(twice) is None


def test_the_47_byte_file_that_got_a_ticket_is_refused() -> None:
    tiny = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF"
    assert len(tiny) == 47
    assert "startxref" in problem_of(tiny)


def test_an_html_page_between_the_markers_is_refused() -> None:
    page = b"%PDF-1.7\n<html><body><h1>Certificate</h1></body></html>\n%%EOF\n"
    assert "startxref" in problem_of(page)


def test_a_catalog_without_cross_references_is_refused() -> None:
    old_fixture = (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )
    assert pdf_structure_problem(old_fixture) is not None


@pytest.mark.parametrize("layout", [PdfLayout(), PdfLayout(xref="stream", object_stream=True)])
def test_every_truncation_is_refused(layout: PdfLayout) -> None:
    data = build_pdf(layout)
    assert data.endswith(b"%%EOF\n")
    for cut in range(1, len(data) - 1):
        assert pdf_structure_problem(data[:cut]) is not None, f"cut at {cut}"


def test_a_truncated_pypdf_file_is_refused() -> None:
    data = make_pdf(pages=2)
    assert pdf_structure_problem(data[: len(data) // 2]) is not None
    assert pdf_structure_problem(data[:-8]) is not None


@pytest.mark.parametrize("header", [b"%PDF-", b"%PDF-x.y", b"%PDF1.4", b" %PDF-1.4"])
def test_a_bad_header_is_refused(header: bytes) -> None:
    data = build_pdf()
    assert "header" in problem_of(header + data[len(b"%PDF-1.7") :])


def test_startxref_must_point_at_cross_references() -> None:
    data = build_pdf()
    at = data.rindex(b"startxref\n") + len(b"startxref\n")
    moved = data[:at] + b"15" + data[data.index(b"\n", at) :]
    assert pdf_structure_problem(moved) is not None


def test_an_entry_must_point_at_its_object() -> None:
    data = build_pdf()
    renumbered = data.replace(b"\n2 0 obj", b"\n7 0 obj", 1)  # same length, offsets hold
    assert "object 2" in problem_of(renumbered)


def test_a_trailer_without_root_is_refused() -> None:
    data = build_pdf()
    assert "/Root" in problem_of(data.replace(b"/Root 1 0 R", b"/Info 1 0 R"))


def test_a_catalog_without_pages_is_refused() -> None:
    data = build_pdf()
    broken = data.replace(b"/Pages 2 0 R", b"/Pagez 2 0 R", 1)
    assert "/Pages" in problem_of(broken)


def test_a_page_tree_without_a_page_is_refused() -> None:
    data = build_pdf()
    broken = data.replace(b"/Kids [3 0 R]", b"/Kids [2 0 R]", 1)  # the tree loops on itself
    assert "no page object" in problem_of(broken)


def test_a_page_tree_of_an_unknown_object_is_refused() -> None:
    data = build_pdf()
    broken = data.replace(b"/Kids [3 0 R]", b"/Kids [9 0 R]", 1)
    assert "no page object" in problem_of(broken)


def test_a_prev_chain_that_loops_is_refused() -> None:
    data = build_pdf()
    xref_at = data.rindex(b"xref\n0 ")
    looped = data.replace(b"/Root 1 0 R >>", b"/Root 1 0 R /Prev %d >>" % xref_at, 1)
    assert "loops" in problem_of(looped)


def test_an_xref_stream_that_does_not_inflate_is_refused() -> None:
    data = build_pdf(PdfLayout(xref="stream"))
    body_at = data.rindex(b">>\nstream\n") + len(b">>\nstream\n")
    length = data.index(b"\nendstream", body_at) - body_at
    garbage = data[:body_at] + b"\x00" * length + data[body_at + length :]
    assert "decompress" in problem_of(garbage)


def test_a_missing_object_stream_is_refused() -> None:
    data = build_pdf(PdfLayout(xref="stream", object_stream=True))
    broken = data.replace(b"/Type /ObjStm", b"/Type /ObjStn", 1)
    assert "object stream" in problem_of(broken)


def test_a_zip_bomb_in_a_structural_stream_is_refused() -> None:
    data = build_pdf(PdfLayout(xref="stream"))
    bomb = zlib.compress(b"\x00" * (65 * 1024 * 1024))
    start = data.rindex(b"/Length ")
    end = data.index(b">>", start)
    body_at = data.index(b">>\nstream\n", end) + len(b">>\nstream\n")
    body_end = data.index(b"\nendstream", body_at)
    inflated = (
        data[:start] + b"/Length %d " % len(bomb) + data[end:body_at] + bomb + data[body_end:]
    )
    # startxref still points at the stream object, which did not move.
    assert "too large" in problem_of(inflated)


@pytest.mark.parametrize(
    "tail", [b"\x00" * 2048, b"\r\n-- \r\nSent through the LMS mail gateway\r\n" * 100]
)
def test_bytes_after_the_last_eof_are_ignored_as_readers_ignore_them(tail: bytes) -> None:
    """The intake accepts these (readers do); the sandbox must not refuse them at upload."""
    assert pdf_structure_problem(build_pdf() + tail) is None


def test_a_revision_cut_off_after_the_last_eof_is_refused() -> None:
    data = build_pdf() + b"4 0 obj\n<< /Type /Annot /Subtype /Text"
    assert "cut off" in problem_of(data)
