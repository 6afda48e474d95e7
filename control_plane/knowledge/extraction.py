"""Plain text out of uploaded documents: TXT, Markdown, PDF (pypdf), DOCX (python-docx) and
HTML (Beautiful Soup), within bounds on unpacked size, pages, paragraphs and chunks (memory and
time are bounded by the child process that runs this: ``sandbox.py``)."""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Literal

from control_plane.knowledge.chunking import chunk_text
from control_plane.knowledge.errors import (
    DocumentTooLarge,
    EmptyDocument,
    KnowledgeError,
    UnreadableDocument,
    UnsupportedDocumentType,
)

logger = logging.getLogger("stimm.control_plane")

DocumentFormat = Literal["text", "markdown", "pdf", "docx", "html"]

_BY_EXTENSION: dict[str, DocumentFormat] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
}
_BY_CONTENT_TYPE: dict[str, DocumentFormat] = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/html": "html",
    "application/xhtml+xml": "html",
}
CONTENT_TYPES: dict[DocumentFormat, str] = {
    "text": "text/plain",
    "markdown": "text/markdown",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "html": "text/html",
}
SUPPORTED = "TXT, Markdown (.md), PDF, DOCX, HTML"
_HTML_BLOCKS = [
    *("p", "div", "section", "article", "header", "footer", "main", "aside", "nav"),
    *("h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "tr", "pre", "blockquote"),
    *("table", "ul", "ol", "dl", "figure", "figcaption", "title"),
]
_WORD_PARAGRAPH = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}p"
_MB = 1024 * 1024
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


@dataclass(frozen=True)
class ExtractionLimits:
    """Bounds one document must stay within; past any of them it fails with the reason."""

    max_text_mb: int = 50
    """Unpacked size: the text (and, for DOCX, the XML it is stored in)."""
    max_pages: int = 2_000
    max_paragraphs: int = 50_000
    max_chunks: int = 10_000
    memory_mb: int = 1_024
    """Address space of the child process that extracts."""
    timeout_s: float = 60.0

    @property
    def max_text_bytes(self) -> int:
        return self.max_text_mb * _MB

    def too_large(self) -> DocumentTooLarge:
        return DocumentTooLarge(f"The file unpacks to more than {self.max_text_mb} MB of text")

    def too_many_paragraphs(self) -> DocumentTooLarge:
        return DocumentTooLarge(f"The document has more than {self.max_paragraphs} paragraphs")


def detect_format(filename: str, content_type: str | None) -> DocumentFormat:
    """The format of an upload, from its file extension, else its declared content type."""
    extension = PurePath(filename).suffix.lower()
    if extension in _BY_EXTENSION:
        return _BY_EXTENSION[extension]
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared in _BY_CONTENT_TYPE:
        return _BY_CONTENT_TYPE[declared]
    raise UnsupportedDocumentType(
        f"Unsupported document type ({extension or declared or 'unknown'}); "
        f"upload one of: {SUPPORTED}"
    )


def check_signature(fmt: DocumentFormat, data: bytes) -> None:
    """Reject at upload time a file whose bytes are plainly not the format its name says."""
    if fmt == "pdf" and not data.lstrip()[:5] == b"%PDF-":
        raise UnreadableDocument("The file is not a PDF (it does not start with %PDF-)")
    if fmt == "docx" and not data.startswith(b"PK"):
        raise UnreadableDocument("The file is not a DOCX document (it is not a ZIP archive)")
    if fmt in ("text", "markdown", "html") and b"\x00" in data[:8192]:
        raise UnreadableDocument("The file is binary, not text")


def extract_text(fmt: DocumentFormat, data: bytes, limits: ExtractionLimits | None = None) -> str:
    """The document's text, paragraphs separated by blank lines. Blocking (CPU)."""
    limits = limits or ExtractionLimits()
    text = _EXTRACTORS[fmt](data, limits)
    if len(text) > limits.max_text_bytes:
        raise limits.too_large()
    text = _TRAILING_SPACE.sub("\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _BLANK_LINES.sub("\n\n", text).strip()
    if not text:
        raise EmptyDocument("The document contains no text")
    if text.count("\n\n") >= limits.max_paragraphs:
        raise limits.too_many_paragraphs()
    return text


def extract_chunks(
    fmt: DocumentFormat, data: bytes, *, size: int, overlap: int, limits: ExtractionLimits
) -> list[str]:
    """The document's chunks (see ``chunk_text``), at most ``limits.max_chunks``."""
    chunks = chunk_text(extract_text(fmt, data, limits), size=size, overlap=overlap)
    if len(chunks) > limits.max_chunks:
        raise DocumentTooLarge(
            f"The document makes more than {limits.max_chunks} chunks ({len(chunks)})"
        )
    return chunks


def _decode(data: bytes, _limits: ExtractionLimits) -> str:
    if b"\x00" in data:
        raise UnreadableDocument("The file is binary, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Older Windows tools still save text as cp1252; anything else is not text.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError as e:
            raise UnreadableDocument("The file is not UTF-8 text") from e


def _pdf(data: bytes, limits: ExtractionLimits) -> str:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument("The PDF is password-protected")
        if len(reader.pages) > limits.max_pages:
            raise DocumentTooLarge(f"The PDF has more than {limits.max_pages} pages")
        pages: list[str] = []
        size = 0
        for page in reader.pages:
            pages.append(page.extract_text() or "")
            size += len(pages[-1])
            if size > limits.max_text_bytes:
                raise limits.too_large()
        return "\n\n".join(pages)
    except (KnowledgeError, MemoryError):
        raise
    except Exception as e:  # pypdf raises many types on damaged files
        raise UnreadableDocument(f"The PDF could not be read: {_describe(e)}") from e


def _docx(data: bytes, limits: ExtractionLimits) -> str:
    import docx

    _check_docx_bounds(data, limits)
    try:
        document = docx.Document(io.BytesIO(data))
    except MemoryError:
        raise
    except Exception as e:  # lxml errors on damaged XML parts
        raise UnreadableDocument(f"The DOCX document could not be read: {_describe(e)}") from e
    blocks = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            blocks.append(" | ".join(cell.text for cell in row.cells))
    return "\n\n".join(blocks)


def _check_docx_bounds(data: bytes, limits: ExtractionLimits) -> None:
    """Refuse a DOCX that unpacks past the size bound, by the sizes its ZIP members declare
    and then by the bytes of its body actually read (counting its paragraphs on the way),
    before python-docx loads any of it."""
    from lxml import etree

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        if sum(info.file_size for info in archive.infolist()) > limits.max_text_bytes:
            raise limits.too_large()
        with archive.open("word/document.xml") as body:
            paragraphs = 0
            for _event, element in etree.iterparse(
                _BoundedReader(body, limits), tag=_WORD_PARAGRAPH, resolve_entities=False
            ):
                paragraphs += 1
                if paragraphs > limits.max_paragraphs:
                    raise limits.too_many_paragraphs()
                element.clear(keep_tail=True)
    except (KnowledgeError, MemoryError):
        raise
    except Exception as e:  # zipfile and lxml raise many types on damaged files
        raise UnreadableDocument(f"The DOCX document could not be read: {_describe(e)}") from e


class _BoundedReader:
    """A file's ``read`` that fails once more than the size bound has come out of it."""

    def __init__(self, source: IO[bytes], limits: ExtractionLimits) -> None:
        self._source = source
        self._limits = limits
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size if size >= 0 else _MB)
        self._read += len(data)
        if self._read > self._limits.max_text_bytes:
            raise self._limits.too_large()
        return data


def _html(data: bytes, _limits: ExtractionLimits) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for element in soup(["script", "style", "noscript", "template", "head", "svg"]):
        element.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    # Block elements become paragraphs; inline ones (<b>, <a>, ...) stay inside their sentence.
    for block in soup.find_all(_HTML_BLOCKS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    return soup.get_text()


def _describe(error: BaseException) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0]
    return (first_line or type(error).__name__)[:200]


_EXTRACTORS: dict[DocumentFormat, Callable[[bytes, ExtractionLimits], str]] = {
    "text": _decode,
    "markdown": _decode,
    "pdf": _pdf,
    "docx": _docx,
    "html": _html,
}
