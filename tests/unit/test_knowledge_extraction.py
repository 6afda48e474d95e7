"""Text extraction from each supported format, refusals of the rest, and the offline embedder."""

from __future__ import annotations

import io
import zipfile

import docx
import numpy as np
import pytest
from fpdf import FPDF

from control_plane.knowledge.embeddings import MiniLMEmbedder
from control_plane.knowledge.errors import (
    DocumentTooLarge,
    EmptyDocument,
    UnreadableDocument,
    UnsupportedDocumentType,
)
from control_plane.knowledge.extraction import (
    ExtractionLimits,
    check_signature,
    detect_format,
    extract_chunks,
    extract_text,
)
from control_plane.knowledge.sandbox import extract_chunks_isolated

pytestmark = pytest.mark.unit


def test_formats_come_from_the_extension_then_the_content_type() -> None:
    assert detect_format("Guide.PDF", "application/octet-stream") == "pdf"
    assert detect_format("notes.md", None) == "markdown"
    assert detect_format("page.htm", None) == "html"
    assert detect_format("upload", "text/plain; charset=utf-8") == "text"
    with pytest.raises(UnsupportedDocumentType, match="upload one of"):
        detect_format("sheet.xlsx", "application/vnd.ms-excel")


def test_pdf_text_is_extracted() -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, "The library closes at nine on Fridays.")
    pdf.add_page()
    pdf.multi_cell(0, 8, "Second page text.")
    text = extract_text("pdf", bytes(pdf.output()))
    assert "The library closes at nine on Fridays." in text
    assert "Second page text." in text


def test_docx_paragraphs_and_tables_are_extracted() -> None:
    document = docx.Document()
    document.add_paragraph("Refunds take five working days.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Monday"
    table.rows[0].cells[1].text = "closed"
    out = io.BytesIO()
    document.save(out)
    text = extract_text("docx", out.getvalue())
    assert "Refunds take five working days." in text
    assert "Monday | closed" in text


def test_html_keeps_inline_text_together_and_drops_scripts() -> None:
    html = (
        b"<html><head><title>T</title><script>track()</script></head><body>"
        b"<h1>Hours</h1><p>We are <b>open</b> on<br>Sundays.</p><ul><li>one</li></ul></body></html>"
    )
    text = extract_text("html", html)
    assert "We are open on\nSundays." in text
    assert "Hours\n\nWe are" in text
    assert "track()" not in text


def test_text_in_cp1252_is_decoded() -> None:
    assert extract_text("text", "Caf\u00e9 prices".encode("cp1252")) == "Caf\u00e9 prices"


def test_unreadable_and_empty_documents_are_reported() -> None:
    with pytest.raises(UnreadableDocument, match="PDF could not be read"):
        extract_text("pdf", b"%PDF-1.4\n" + b"\x00garbage" * 50)
    with pytest.raises(UnreadableDocument, match="DOCX"):
        extract_text("docx", b"PK\x03\x04 not really a zip")
    with pytest.raises(EmptyDocument):
        extract_text("html", b"<html><body><script>x()</script></body></html>")
    with pytest.raises(UnreadableDocument, match="not a PDF"):
        check_signature("pdf", b"hello")


def test_offline_embedder_ranks_the_related_sentence_first() -> None:
    embedder = MiniLMEmbedder()
    docs = [
        "The office is open from 9am to 5pm on weekdays.",
        "Our refund policy allows returns within 30 days.",
        "Parking is available in the basement garage for visitors.",
    ]
    questions = ["Can I return a product and get my money back?", "Where can I leave my car?"]
    vectors = np.array(embedder.embed(docs + questions))
    assert vectors.shape == (5, embedder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similarity = vectors[3:] @ vectors[:3].T
    assert similarity[0].argmax() == 1
    assert similarity[1].argmax() == 2
    # Batched and one-by-one embeddings agree (padding does not change a vector).
    assert np.allclose(embedder.embed([docs[0]])[0], vectors[0], atol=1e-4)


def docx_of_paragraphs(count: int, text: str = "") -> bytes:
    """A DOCX whose body is ``count`` paragraphs, written straight into its XML."""
    template = io.BytesIO()
    docx.Document().save(template)
    source = zipfile.ZipFile(template)
    paragraph = f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>" if text else "<w:p/>"
    body = (
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{paragraph * count}</w:body></w:document>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = body.encode() if info.filename == "word/document.xml" else source.read(info)
            archive.writestr(info.filename, data)
    return out.getvalue()


def test_bounds_of_one_document_are_enforced_with_the_reason() -> None:
    small = ExtractionLimits(max_text_mb=1, max_paragraphs=100, max_pages=1, max_chunks=3)
    with pytest.raises(DocumentTooLarge, match="^The file unpacks to more than 1 MB of text$"):
        extract_text("docx", docx_of_paragraphs(200_000), small)
    with pytest.raises(DocumentTooLarge, match="^The document has more than 100 paragraphs$"):
        extract_text("docx", docx_of_paragraphs(101, "word"), small)
    with pytest.raises(DocumentTooLarge, match="more than 100 paragraphs"):
        extract_text("text", b"line\n\n" * 101, small)
    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 8, "A page.")
    with pytest.raises(DocumentTooLarge, match="^The PDF has more than 1 pages$"):
        extract_text("pdf", bytes(pdf.output()), small)
    with pytest.raises(DocumentTooLarge, match="more than 3 chunks"):
        extract_chunks("text", b"A sentence. " * 100, size=100, overlap=0, limits=small)
    assert extract_text("docx", docx_of_paragraphs(100, "word"), small).count("word") == 100


async def test_extraction_in_its_child_process_is_bounded_by_memory_and_time() -> None:
    data = docx_of_paragraphs(20, "Refunds take five working days.")
    chunks = await extract_chunks_isolated(
        "docx", data, size=800, overlap=0, limits=ExtractionLimits()
    )
    assert chunks and "Refunds take five working days." in chunks[0]
    with pytest.raises(DocumentTooLarge, match="^Extraction took longer than 0.01 s$"):
        await extract_chunks_isolated(
            "docx", data, size=800, overlap=0, limits=ExtractionLimits(timeout_s=0.01)
        )
    # Within the size and paragraph bounds, but Beautiful Soup's tree of it needs more memory.
    heavy = b"<p>x</p>" * 1_000_000
    limits = ExtractionLimits(max_paragraphs=10**7, memory_mb=256)
    with pytest.raises(DocumentTooLarge, match="^Extraction needed more than 256 MB of memory$"):
        await extract_chunks_isolated("html", heavy, size=800, overlap=0, limits=limits)
