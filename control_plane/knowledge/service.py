"""The knowledge bases as the app uses them: one vector store, one embedder and the running
ingestion worker, owned by the app (``app.state.knowledge``) for the life of the process."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.knowledge import crud
from control_plane.knowledge.config import KnowledgeSettings
from control_plane.knowledge.embeddings import Embedder, default_embedder
from control_plane.knowledge.models import KnowledgeBase
from control_plane.knowledge.queue import IngestionWorker
from control_plane.knowledge.store import VectorStore
from stimm.schema import KnowledgeQueryResult, RetrievedChunk

logger = logging.getLogger("stimm.control_plane")


class KnowledgeService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: VectorStore,
        embedder: Embedder,
        settings: KnowledgeSettings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.ingestion = IngestionWorker(sessionmaker, store, embedder, settings)

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
        return cls(sessionmaker, store, embedder or default_embedder(), settings)

    # -- ingestion ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start ingesting the queued documents (and, after their lease, the ones a stopped
        control plane left half-done); uploads call it too."""
        self.ingestion.wake()

    async def wait_idle(self) -> None:
        """Wait until no document is queued or in progress (tests and benchmarks)."""
        await self.ingestion.wait_idle()

    async def delete_document_vectors(self, kb_id: str, document_id: str) -> None:
        """Stop the document's ingestion if it runs, then delete its vectors."""
        await self.ingestion.stop([document_id])
        await self.store.delete_document(kb_id, document_id)

    async def delete_knowledge_base_vectors(self, kb_id: str, document_ids: list[str]) -> None:
        await self.ingestion.stop(document_ids)
        await self.store.drop(kb_id)

    # -- retrieval ---------------------------------------------------------------------------

    async def query(self, kb: KnowledgeBase, query: str, top_k: int) -> KnowledgeQueryResult:
        """The ``top_k`` chunks closest to ``query``, best first, and how long it took."""
        started = time.perf_counter()
        [vector] = await asyncio.to_thread(self.embedder.embed, [query])
        hits = await self.store.search(kb.id, vector, top_k)
        if hits:
            # Vectors are visible only once complete; this also covers the instant between
            # that and the document's "ready".
            async with self.sessionmaker() as db:
                ready = await crud.ready_document_ids(db, {h.document_id for h in hits})
            hits = [h for h in hits if h.document_id in ready]
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
        await self.ingestion.aclose()
        await self.store.aclose()
