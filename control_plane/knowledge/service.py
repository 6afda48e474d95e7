"""The knowledge bases as the app uses them: one vector store, one embedder and the running
ingestions, owned by the app (``app.state.knowledge``) for the life of the process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.knowledge.config import KnowledgeSettings
from control_plane.knowledge.embeddings import Embedder, default_embedder
from control_plane.knowledge.extraction import DocumentFormat
from control_plane.knowledge.ingestion import IngestionJob, ingest
from control_plane.knowledge.models import Document, KnowledgeBase
from control_plane.knowledge.store import VectorStore
from control_plane.models import utcnow
from stimm.schema import KnowledgeQueryResult, RetrievedChunk

logger = logging.getLogger("stimm.control_plane")


class KnowledgeService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: VectorStore,
        embedder: Embedder,
        *,
        max_upload_bytes: int,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.store = store
        self.embedder = embedder
        self.max_upload_bytes = max_upload_bytes
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cpu = asyncio.Semaphore(1)

    @classmethod
    def from_settings(
        cls,
        sessionmaker: async_sessionmaker[AsyncSession],
        database_url: str,
        settings: KnowledgeSettings | None = None,
        embedder: Embedder | None = None,
    ) -> KnowledgeService:
        settings = settings or KnowledgeSettings()
        if settings.qdrant_url:
            key = settings.qdrant_api_key
            api_key = key.get_secret_value() if key is not None else None
            store = VectorStore(url=settings.qdrant_url, api_key=api_key)
        else:
            store = VectorStore(path=settings.qdrant_path(database_url))
        return cls(
            sessionmaker,
            store,
            embedder or default_embedder(),
            max_upload_bytes=settings.max_upload_bytes,
        )

    # -- ingestion ---------------------------------------------------------------------------

    def start_ingestion(
        self, kb: KnowledgeBase, document: Document, fmt: DocumentFormat, data: bytes
    ) -> None:
        job = IngestionJob(
            knowledge_base_id=kb.id,
            document_id=document.id,
            document_name=document.filename,
            fmt=fmt,
            data=data,
            chunk_size=kb.chunk_size,
            chunk_overlap=kb.chunk_overlap,
            embedding_dim=kb.embedding_dim,
        )
        task = asyncio.create_task(
            ingest(
                job,
                sessionmaker=self.sessionmaker,
                embedder=self.embedder,
                store=self.store,
                cpu=self._cpu,
            ),
            name=f"ingest-{document.id}",
        )
        self._tasks[document.id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(document.id, None))

    async def wait_idle(self) -> None:
        """Wait until every running ingestion has finished (tests and benchmarks)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _stop(self, document_ids: list[str]) -> None:
        tasks = [t for d in document_ids if (t := self._tasks.get(d)) is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def delete_document_vectors(self, kb_id: str, document_id: str) -> None:
        """Stop the document's ingestion if it runs, then delete its vectors."""
        await self._stop([document_id])
        await self.store.delete_document(kb_id, document_id)

    async def delete_knowledge_base_vectors(self, kb_id: str, document_ids: list[str]) -> None:
        await self._stop(document_ids)
        await self.store.drop(kb_id)

    async def fail_interrupted(self) -> None:
        """Mark failed the documents a previous process left half-ingested (their uploads were
        only held in that process's memory)."""
        async with self.sessionmaker() as db:
            statement = select(Document).where(col(Document.status).in_(["queued", "processing"]))
            documents = (await db.exec(statement)).all()
            for document in documents:
                if document.id in self._tasks:
                    continue
                document.status = "failed"
                document.error = "Ingestion was interrupted by a restart; upload the file again"
                document.updated_at = utcnow()
                db.add(document)
            await db.commit()
        if documents:
            logger.warning("%d interrupted ingestions marked failed", len(documents))

    # -- retrieval ---------------------------------------------------------------------------

    async def query(self, kb: KnowledgeBase, query: str, top_k: int) -> KnowledgeQueryResult:
        """The ``top_k`` chunks closest to ``query``, best first, and how long it took."""
        started = time.perf_counter()
        [vector] = await asyncio.to_thread(self.embedder.embed, [query])
        hits = await self.store.search(kb.id, vector, top_k)
        elapsed_ms = (time.perf_counter() - started) * 1000
        return KnowledgeQueryResult(
            chunks=[
                RetrievedChunk(
                    document_id=h.document_id,
                    document_name=h.document_name,
                    text=h.text,
                    score=h.score,
                )
                for h in hits
            ],
            retrieval_ms=round(elapsed_ms, 2),
        )

    async def ping(self) -> None:
        """Raise ``VectorStoreUnavailable`` unless Qdrant answers (for /health)."""
        await self.store.ping()

    async def aclose(self) -> None:
        await self._stop(list(self._tasks))
        await self.store.aclose()
