"""Plain text out of uploaded documents: TXT, Markdown, PDF (pypdf), DOCX (python-docx) and
HTML (Beautiful Soup)."""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Callable
from pathlib import PurePath
from typing import Literal

from control_plane.knowledge.errors import (
    EmptyDocument,
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
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


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


def extract_text(fmt: DocumentFormat, data: bytes) -> str:
    """The document's text, paragraphs separated by blank lines. Blocking (CPU): run in a
    thread."""
    text = _EXTRACTORS[fmt](data)
    text = _TRAILING_SPACE.sub("\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _BLANK_LINES.sub("\n\n", text).strip()
    if not text:
        raise EmptyDocument("The document contains no text")
    return text


def _decode(data: bytes) -> str:
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


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument("The PDF is password-protected")
        return "\n\n".join((page.extract_text() or "") for page in reader.pages)
    except UnreadableDocument:
        raise
    except Exception as e:  # pypdf raises many types on damaged files
        raise UnreadableDocument(f"The PDF could not be read: {_describe(e)}") from e


def _docx(data: bytes) -> str:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise UnreadableDocument(f"The DOCX document could not be read: {_describe(e)}") from e
    except Exception as e:  # lxml errors on damaged XML parts
        raise UnreadableDocument(f"The DOCX document could not be read: {_describe(e)}") from e
    blocks = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            blocks.append(" | ".join(cell.text for cell in row.cells))
    return "\n\n".join(blocks)


def _html(data: bytes) -> str:
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


_EXTRACTORS: dict[DocumentFormat, Callable[[bytes], str]] = {
    "text": _decode,
    "markdown": _decode,
    "pdf": _pdf,
    "docx": _docx,
    "html": _html,
}
