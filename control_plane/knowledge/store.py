"""Chunk vectors in Qdrant: one collection per knowledge base, one point per chunk.

A document's points are written with ``ready: false`` and switched to ``true`` once all of them
are stored; searches skip points that are not ready, so a document half-ingested (or
interrupted) never answers a query.

Embedded local mode (a folder, one client per folder per process) unless a server URL is set.
The client opens on first use, so a locked or unreachable store never stops the control plane
from starting; the knowledge routes answer 503 instead, and ``ping`` reports it to /health.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qdrant_client import AsyncQdrantClient, models

from control_plane.knowledge.errors import VectorStoreUnavailable

logger = logging.getLogger("stimm.control_plane")

_POINT_NAMESPACE = uuid.UUID("6f1c5e1e-4f0e-4c5e-9b7a-2f1b7d3c9a10")


@dataclass(frozen=True)
class ChunkRecord:
    document_id: str
    document_name: str
    index: int
    text: str
    vector: list[float]


@dataclass(frozen=True)
class ScoredChunk:
    document_id: str
    document_name: str
    index: int
    text: str
    score: float


def collection_name(kb_id: str) -> str:
    return f"stimm_kb_{kb_id}"


class VectorStore:
    """Async access to the Qdrant collections of the knowledge bases."""

    def __init__(
        self, *, url: str | None = None, api_key: str | None = None, path: Path | None = None
    ) -> None:
        if (url is None) == (path is None):
            raise ValueError("give either a Qdrant server url or a local path")
        self._url = url
        self._api_key = api_key
        self._path = path
        self._client: AsyncQdrantClient | None = None
        self._lock = asyncio.Lock()

    @property
    def location(self) -> str:
        return self._url or f"local:{self._path}"

    async def client(self) -> AsyncQdrantClient:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    if self._url is not None:
                        self._client = AsyncQdrantClient(
                            url=self._url, api_key=self._api_key, timeout=10
                        )
                    else:
                        assert self._path is not None
                        self._path.mkdir(parents=True, exist_ok=True)
                        self._client = AsyncQdrantClient(path=str(self._path))
                except Exception as e:  # e.g. the folder is locked by another process
                    raise VectorStoreUnavailable(
                        f"Qdrant ({self.location}) could not be opened: {e}"
                    ) from e
                logger.info("vector store opened (%s)", self.location)
        return self._client

    async def ping(self) -> None:
        """Raise ``VectorStoreUnavailable`` unless Qdrant answers."""
        client = await self.client()
        try:
            await client.get_collections()
        except Exception as e:
            raise VectorStoreUnavailable(f"Qdrant ({self.location}) is unreachable: {e}") from e

    async def ensure_collection(self, kb_id: str, dim: int) -> None:
        client = await self.client()
        name = collection_name(kb_id)
        try:
            if await client.collection_exists(name):
                return
            await client.create_collection(
                name, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
            )
            if self._url is not None:  # local mode has no payload indexes
                await client.create_payload_index(
                    name, "document_id", field_schema=models.PayloadSchemaType.KEYWORD
                )
        except Exception as e:
            raise VectorStoreUnavailable(f"Could not create collection {name}: {e}") from e

    async def upsert(self, kb_id: str, chunks: Sequence[ChunkRecord]) -> None:
        client = await self.client()
        points = [
            models.PointStruct(
                id=str(uuid.uuid5(_POINT_NAMESPACE, f"{c.document_id}:{c.index}")),
                vector=c.vector,
                payload={
                    "document_id": c.document_id,
                    "document_name": c.document_name,
                    "index": c.index,
                    "text": c.text,
                    "ready": False,
                },
            )
            for c in chunks
        ]
        try:
            await client.upsert(collection_name(kb_id), points=points, wait=True)
        except Exception as e:
            raise VectorStoreUnavailable(f"Could not store vectors: {e}") from e

    async def mark_ready(self, kb_id: str, document_id: str) -> None:
        """Make the document's points visible to searches."""
        client = await self.client()
        try:
            await client.set_payload(
                collection_name(kb_id),
                payload={"ready": True},
                points=models.FilterSelector(filter=_document_filter(document_id)),
                wait=True,
            )
        except Exception as e:
            raise VectorStoreUnavailable(f"Could not store vectors: {e}") from e

    async def search(self, kb_id: str, vector: list[float], top_k: int) -> list[ScoredChunk]:
        client = await self.client()
        name = collection_name(kb_id)
        # Points stored before the ready flag existed have none: they are ready.
        not_ready = models.FieldCondition(key="ready", match=models.MatchValue(value=False))
        try:
            if not await client.collection_exists(name):
                return []
            response = await client.query_points(
                name,
                query=vector,
                query_filter=models.Filter(must_not=[not_ready]),
                limit=top_k,
                with_payload=True,
            )
        except Exception as e:
            raise VectorStoreUnavailable(f"Qdrant search failed: {e}") from e
        return [
            ScoredChunk(
                document_id=str(p.payload["document_id"]),
                document_name=str(p.payload["document_name"]),
                index=int(p.payload["index"]),
                text=str(p.payload["text"]),
                score=float(p.score),
            )
            for p in response.points
            if p.payload is not None
        ]

    async def count(self, kb_id: str, document_id: str | None = None) -> int:
        client = await self.client()
        name = collection_name(kb_id)
        if not await client.collection_exists(name):
            return 0
        count_filter = _document_filter(document_id) if document_id is not None else None
        result = await client.count(name, count_filter=count_filter, exact=True)
        return result.count

    async def delete_document(self, kb_id: str, document_id: str) -> None:
        client = await self.client()
        name = collection_name(kb_id)
        try:
            if await client.collection_exists(name):
                await client.delete(
                    name,
                    points_selector=models.FilterSelector(filter=_document_filter(document_id)),
                    wait=True,
                )
        except Exception as e:
            raise VectorStoreUnavailable(f"Could not delete vectors: {e}") from e

    async def drop(self, kb_id: str) -> None:
        client = await self.client()
        try:
            await client.delete_collection(collection_name(kb_id))
        except Exception as e:
            raise VectorStoreUnavailable(f"Could not delete collection: {e}") from e

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _document_filter(document_id: str) -> models.Filter:
    return models.Filter(
        must=[models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))]
    )
