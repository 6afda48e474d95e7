"""The vector store in Qdrant's embedded mode (a temporary folder) and where it is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.knowledge.config import KnowledgeSettings
from control_plane.knowledge.errors import VectorStoreUnavailable
from control_plane.knowledge.store import ChunkRecord, VectorStore

pytestmark = pytest.mark.unit


def unit(*values: float) -> list[float]:
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values]


async def test_chunks_are_stored_searched_and_deleted_per_document(tmp_path: Path) -> None:
    store = VectorStore(path=tmp_path / "qdrant")
    try:
        await store.ensure_collection("kb1", 3)
        await store.ensure_collection("kb1", 3)  # a second time is a no-op
        await store.upsert(
            "kb1",
            [
                ChunkRecord("doc-a", "a.txt", 0, "about cats", unit(1, 0, 0)),
                ChunkRecord("doc-a", "a.txt", 1, "about dogs", unit(0, 1, 0)),
                ChunkRecord("doc-b", "b.txt", 0, "about birds", unit(0, 0, 1)),
            ],
        )
        # Stored but not yet complete: invisible to searches until marked ready.
        assert await store.search("kb1", unit(0.1, 1, 0), top_k=2) == []
        await store.mark_ready("kb1", "doc-a")
        await store.mark_ready("kb1", "doc-b")
        hits = await store.search("kb1", unit(0.1, 1, 0), top_k=2)
        assert [(h.document_name, h.text) for h in hits] == [
            ("a.txt", "about dogs"),
            ("a.txt", "about cats"),
        ]
        assert hits[0].score > hits[1].score
        assert await store.count("kb1", "doc-a") == 2

        await store.delete_document("kb1", "doc-a")
        assert await store.count("kb1", "doc-a") == 0
        assert [h.text for h in await store.search("kb1", unit(0, 1, 0), top_k=5)] == [
            "about birds"
        ]
        assert await store.search("no-such-kb", unit(1, 0, 0), top_k=5) == []

        await store.drop("kb1")
        assert await store.count("kb1") == 0
        await store.ping()
    finally:
        await store.aclose()


async def test_a_folder_in_use_is_reported_not_crashed_on(tmp_path: Path) -> None:
    first = VectorStore(path=tmp_path / "qdrant")
    second = VectorStore(path=tmp_path / "qdrant")
    try:
        await first.ping()
        with pytest.raises(VectorStoreUnavailable, match="could not be opened"):
            await second.ping()
    finally:
        await first.aclose()
        await second.aclose()


def test_the_local_store_lives_next_to_the_sqlite_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STIMM_DATA_DIR", raising=False)
    settings = KnowledgeSettings()
    assert settings.qdrant_path("sqlite+aiosqlite:////var/lib/stimm/stimm.db") == Path(
        "/var/lib/stimm/qdrant"
    )
    assert settings.qdrant_path("postgresql+asyncpg://u:p@db/stimm") == Path(".stimm/qdrant")
    explicit = KnowledgeSettings(data_dir=tmp_path)
    assert explicit.qdrant_path("sqlite+aiosqlite:////x/stimm.db") == tmp_path / "qdrant"
