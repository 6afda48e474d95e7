"""Errors of the knowledge-base pipeline; routes turn them into 4xx/503 responses."""

from __future__ import annotations

from control_plane.errors import ControlPlaneError


class KnowledgeError(ControlPlaneError):
    """Base class of the knowledge-base errors."""


class UnsupportedDocumentType(KnowledgeError):
    """The upload is not one of the formats we extract text from."""


class UnreadableDocument(KnowledgeError):
    """The file claims a supported format but its content cannot be parsed."""


class EmptyDocument(KnowledgeError):
    """The file holds no text to index."""


class DocumentTooLarge(KnowledgeError):
    """The document exceeds a bound of extraction: unpacked size, pages, paragraphs, chunks,
    memory or time."""


class EmbeddingError(KnowledgeError):
    """The embedding model could not be loaded or failed on the input."""


class VectorStoreUnavailable(KnowledgeError):
    """Qdrant could not be opened or reached."""

    retryable = True
