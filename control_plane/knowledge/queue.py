"""The ingestion queue's worker: takes documents from the database one at a time, round-robin
over the knowledge bases, and keeps a heartbeat on the one it ingests.

The queue is the ``document`` table (status ``queued``, bytes in ``document_file``), so every
control-plane replica runs a worker; a claim is one conditional UPDATE, so a document is taken
once. A document left ``processing`` without a heartbeat for ``lease_s`` (its control plane was
killed) is taken up again: its leftover vectors are deleted and it is ingested anew, or failed
after ``MAX_ATTEMPTS`` interruptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.knowledge import crud
from control_plane.knowledge.config import KnowledgeSettings
from control_plane.knowledge.embeddings import Embedder
from control_plane.knowledge.extraction import detect_format
from control_plane.knowledge.ingestion import IngestionJob, fail, ingest
from control_plane.knowledge.models import Document
from control_plane.knowledge.store import VectorStore
from control_plane.models import utcnow
from control_plane.tasks import cancel_and_wait

logger = logging.getLogger("stimm.control_plane")

MAX_ATTEMPTS = 3
POLL_S = 5.0
"""How often an idle worker looks for documents that other replicas queued or abandoned."""


class IngestionWorker:
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
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._current: tuple[str, asyncio.Task[None]] | None = None
        self._last_kb_id: str | None = None

    def wake(self) -> None:
        """Start the worker if it is not running, and have it look at the queue now."""
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.create_task(self._run(), name="knowledge-ingestion")
        self._wake.set()

    async def wait_idle(self) -> None:
        """Wait until no document is queued or in progress (tests and benchmarks)."""
        self.wake()
        while True:
            async with self.sessionmaker() as db:
                pending, _ = await crud.pending_counts(db, "")
            if pending == 0:
                return
            await asyncio.sleep(0.05)

    async def stop(self, document_ids: list[str]) -> None:
        """Stop ingesting these documents if this worker is on one of them."""
        if self._current is not None and self._current[0] in document_ids:
            task = self._current[1]
            task.cancel()
            await asyncio.wait([task])

    async def aclose(self) -> None:
        await cancel_and_wait(self._loop_task)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                document = await self._claim()
            except Exception:
                logger.exception("ingestion queue: could not read the queue")
                document = None
            if document is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)
                continue
            task = asyncio.create_task(self._process(document), name=f"ingest-{document.id}")
            self._current = (document.id, task)
            try:
                await asyncio.wait([task])
            finally:
                if not task.done():  # the worker itself is stopping
                    task.cancel()
                    await asyncio.wait([task])
                self._current = None

    async def _claim(self) -> Document | None:
        """The next document, now ``processing`` for this worker: an abandoned one first,
        then the oldest queued one of the next knowledge base in turn."""
        beat_before = utcnow() - timedelta(seconds=self.settings.lease_s)
        async with self.sessionmaker() as db:
            for _ in range(5):  # another replica may win a claim: try the next one
                stale = await crud.stale_processing(db, beat_before)
                if stale is not None:
                    if await crud.claim_document(db, stale, beat_before=beat_before):
                        logger.warning("document %s was interrupted; ingesting again", stale.id)
                        return stale
                    continue
                queued = await crud.next_queued(db, self._last_kb_id)
                if queued is None:
                    return None
                if await crud.claim_document(db, queued):
                    self._last_kb_id = queued.knowledge_base_id
                    return queued
        return None

    async def _process(self, document: Document) -> None:
        heartbeat = asyncio.create_task(self._beat(document.id))
        try:
            async with self.sessionmaker() as db:
                kb = await crud.get_knowledge_base(db, document.knowledge_base_id)
                data = await crud.get_document_data(db, document.id)
            if kb is None:
                return
            if document.attempts > MAX_ATTEMPTS:
                reason = (
                    f"Ingestion was interrupted {MAX_ATTEMPTS} times (the control plane "
                    "stopped while processing it); upload the file again"
                )
            elif data is None:
                reason = "The uploaded file is no longer stored; upload it again"
            else:
                job = IngestionJob(
                    knowledge_base_id=kb.id,
                    document_id=document.id,
                    document_name=document.filename,
                    fmt=detect_format(document.filename, document.content_type),
                    data=data,
                    chunk_size=kb.chunk_size,
                    chunk_overlap=kb.chunk_overlap,
                    embedding_dim=kb.embedding_dim,
                    limits=self.settings.limits(),
                )
                await ingest(
                    job, sessionmaker=self.sessionmaker, embedder=self.embedder, store=self.store
                )
                return
            await fail(self.sessionmaker, self.store, kb.id, document.id, reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("document %s: ingestion could not run", document.id)
        finally:
            heartbeat.cancel()

    async def _beat(self, document_id: str) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_s / 4)
            async with self.sessionmaker() as db:
                if await crud.update_document(db, document_id) is None:
                    return
