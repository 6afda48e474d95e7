"""One document's way into its knowledge base: extract and chunk (in a child process, within
bounds) → embed in batches → store → make visible, with its status and progress written to the
database as it goes."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.knowledge import crud
from control_plane.knowledge.embeddings import Embedder
from control_plane.knowledge.errors import KnowledgeError
from control_plane.knowledge.extraction import DocumentFormat, ExtractionLimits
from control_plane.knowledge.sandbox import extract_chunks_isolated
from control_plane.knowledge.store import ChunkRecord, VectorStore

logger = logging.getLogger("stimm.control_plane")

EMBED_BATCH = 16


@dataclass(frozen=True)
class IngestionJob:
    knowledge_base_id: str
    document_id: str
    document_name: str
    fmt: DocumentFormat
    data: bytes
    chunk_size: int
    chunk_overlap: int
    embedding_dim: int
    limits: ExtractionLimits


class DocumentGone(Exception):
    """The document was deleted while it was being ingested."""


async def ingest(
    job: IngestionJob,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    embedder: Embedder,
    store: VectorStore,
) -> None:
    """Ingest ``job``, a document already claimed (``processing``); never raises: a failure is
    recorded on the document."""

    async def update(**fields: Any) -> None:
        async with sessionmaker() as db:
            if await crud.update_document(db, job.document_id, **fields) is None:
                raise DocumentGone

    try:
        # What an interrupted attempt left behind (never visible: not marked ready).
        await store.delete_document(job.knowledge_base_id, job.document_id)
        chunks = await extract_chunks_isolated(
            job.fmt, job.data, size=job.chunk_size, overlap=job.chunk_overlap, limits=job.limits
        )
        await update(chunks_total=len(chunks), chunks_embedded=0)
        await store.ensure_collection(job.knowledge_base_id, job.embedding_dim)
        for start in range(0, len(chunks), EMBED_BATCH):
            batch = chunks[start : start + EMBED_BATCH]
            vectors = await asyncio.to_thread(embedder.embed, batch)
            await store.upsert(
                job.knowledge_base_id,
                [
                    ChunkRecord(job.document_id, job.document_name, start + i, text, vector)
                    for i, (text, vector) in enumerate(zip(batch, vectors, strict=True))
                ],
            )
            await update(chunks_embedded=start + len(batch))
        await store.mark_ready(job.knowledge_base_id, job.document_id)
        await update(status="ready", error=None)
        async with sessionmaker() as db:
            await crud.delete_document_data(db, job.document_id)
        logger.info("document %s ingested: %d chunks", job.document_id, len(chunks))
    except DocumentGone:
        logger.info("document %s was deleted during ingestion", job.document_id)
        await store.delete_document(job.knowledge_base_id, job.document_id)
    except KnowledgeError as e:
        logger.warning("document %s failed: %s", job.document_id, type(e).__name__)
        await fail(sessionmaker, store, job.knowledge_base_id, job.document_id, str(e))
    except asyncio.CancelledError:
        raise
    except Exception as e:
        logger.exception("document %s failed unexpectedly", job.document_id)
        reason = f"Internal error during ingestion: {e}"
        await fail(sessionmaker, store, job.knowledge_base_id, job.document_id, reason)


async def fail(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: VectorStore,
    kb_id: str,
    document_id: str,
    reason: str,
) -> None:
    """Mark the document failed and drop what it had stored (vectors and uploaded bytes)."""
    try:
        await store.delete_document(kb_id, document_id)
    except KnowledgeError:
        logger.warning("could not remove the vectors of failed document %s", document_id)
    async with sessionmaker() as db:
        await crud.update_document(db, document_id, status="failed", error=reason[:2_000])
        await crud.delete_document_data(db, document_id)
