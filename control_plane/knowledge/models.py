"""Knowledge bases and their documents: tables and HTTP shapes. The chunks and their vectors
live in Qdrant, one collection per knowledge base."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, model_validator
from sqlalchemy import LargeBinary, String, Text
from sqlmodel import Field, SQLModel

from control_plane.models import new_id, utcnow

DocumentStatus = Literal["queued", "processing", "ready", "failed"]

DEFAULT_CHUNK_SIZE = 800
DEFAULT_CHUNK_OVERLAP = 120


class KnowledgeBaseBase(SQLModel):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2_000, sa_type=Text)
    chunk_size: int = Field(default=DEFAULT_CHUNK_SIZE, ge=100, le=8_000)
    """Largest chunk, in characters."""
    chunk_overlap: int = Field(default=DEFAULT_CHUNK_OVERLAP, ge=0, le=2_000)
    """Characters of whole sentences a chunk repeats from the end of the previous one."""


def _check_overlap(chunk_size: int | None, chunk_overlap: int | None) -> None:
    if chunk_size is not None and chunk_overlap is not None and chunk_overlap >= chunk_size:
        raise ValueError("chunk_overlap must be smaller than chunk_size")


class KnowledgeBaseCreate(KnowledgeBaseBase):
    """Body of ``POST /api/knowledge-bases``."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _overlap_below_size(self) -> KnowledgeBaseCreate:
        _check_overlap(self.chunk_size, self.chunk_overlap)
        return self


class KnowledgeBaseUpdate(BaseModel):
    """Body of ``PATCH /api/knowledge-bases/{id}``; chunking changes apply to new uploads."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2_000)
    chunk_size: int | None = Field(default=None, ge=100, le=8_000)
    chunk_overlap: int | None = Field(default=None, ge=0, le=2_000)


class KnowledgeBase(KnowledgeBaseBase, table=True):
    __tablename__ = "knowledge_base"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    embedding_model: str = Field(max_length=200)
    embedding_dim: int
    created_at: AwareDatetime = Field(default_factory=utcnow, index=True)
    updated_at: AwareDatetime = Field(default_factory=utcnow)


class KnowledgeBasePublic(KnowledgeBaseBase):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_serialization_defaults_required=True
    )

    id: str
    embedding_model: str
    embedding_dim: int
    document_count: int = 0
    created_at: datetime
    updated_at: datetime


class KnowledgeBasesPublic(BaseModel):
    items: list[KnowledgeBasePublic]
    count: int


class Document(SQLModel, table=True):
    """One uploaded file and where its ingestion stands."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    knowledge_base_id: str = Field(
        foreign_key="knowledge_base.id", ondelete="CASCADE", index=True, max_length=36
    )
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=100)
    size_bytes: int
    status: DocumentStatus = Field(default="queued", sa_type=String(16))
    error: str | None = Field(default=None, sa_type=Text)
    chunks_total: int = 0
    chunks_embedded: int = 0
    attempts: int = 0
    """Times an ingestion of it has started (one more after each interruption)."""
    created_at: AwareDatetime = Field(default_factory=utcnow)
    updated_at: AwareDatetime = Field(default_factory=utcnow)
    """While ``processing``, the heartbeat of the control plane that ingests it."""


class DocumentFile(SQLModel, table=True):
    """The uploaded bytes of a document, kept until its ingestion ends (the ingestion queue
    lives in the database, so any replica, or the same one after a restart, can take it)."""

    __tablename__ = "document_file"

    document_id: str = Field(
        foreign_key="document.id", ondelete="CASCADE", primary_key=True, max_length=36
    )
    data: bytes = Field(sa_type=LargeBinary)


class DocumentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    knowledge_base_id: str
    filename: str
    content_type: str
    size_bytes: int
    status: DocumentStatus
    error: str | None
    chunks_total: int
    chunks_embedded: int
    attempts: int
    """Times its ingestion started (more than 1: it was interrupted and taken up again)."""
    created_at: datetime
    updated_at: datetime


class Problem(BaseModel):
    """An error answer: ``{"detail": "what went wrong"}``."""

    detail: str


class DocumentsPublic(BaseModel):
    items: list[DocumentPublic]
    count: int
