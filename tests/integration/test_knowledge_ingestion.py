"""The ingestion queue against real PostgreSQL and embedded Qdrant: documents built to take the
control plane down (a ZIP bomb, a paragraph bomb) fail with a clear reason; knowledge bases take
turns; the queue is capped; queued and interrupted documents survive a restart, and an
interrupted document's vectors never answer a query."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import docx
import httpx
import psutil
import pytest
from fastapi import FastAPI

from control_plane.knowledge import crud
from control_plane.knowledge.config import KnowledgeSettings
from control_plane.knowledge.models import DocumentFile
from control_plane.knowledge.service import KnowledgeService
from control_plane.knowledge.store import ChunkRecord
from control_plane.models import utcnow
from tests.integration.control_plane_env import app_client
from tests.integration.control_plane_env import make_settings as make_app_settings
from tests.integration.test_knowledge_bases import (
    FACTS,
    FILLER,
    QUESTIONS,
    create_kb,
    query,
    text_document,
    upload,
    wait_done,
)

pytestmark = pytest.mark.integration

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
WORD_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


# --- fixtures ---------------------------------------------------------------------------------


@asynccontextmanager
async def control_plane(
    database_url: str, qdrant_dir: Path, **settings: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, KnowledgeService]]:
    """One control-plane process: the app and its knowledge service, started as the lifespan
    starts it, closed at the end (as a stop)."""
    async with app_client(make_app_settings(database_url)) as (app, client):
        knowledge = KnowledgeService.from_settings(
            app.state.sessionmaker,
            database_url,
            KnowledgeSettings(data_dir=qdrant_dir, **{"max_upload_bytes": 4 << 20, **settings}),
        )
        app.state.knowledge = knowledge
        knowledge.start()
        try:
            yield app, client, knowledge
        finally:
            await knowledge.aclose()


# --- documents --------------------------------------------------------------------------------


def docx_with_body(write_body: Any) -> bytes:
    """A real DOCX whose word/document.xml is replaced by what ``write_body`` streams."""
    template = io.BytesIO()
    docx.Document().save(template)
    source = zipfile.ZipFile(template)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info in source.infolist():
            if info.filename != "word/document.xml":
                archive.writestr(info, source.read(info.filename))
                continue
            with archive.open("word/document.xml", "w", force_zip64=True) as body:
                body.write(
                    f'<?xml version="1.0"?><w:document xmlns:w="{WORD_NS}"><w:body>'.encode()
                )
                write_body(body)
                body.write(b"</w:body></w:document>")
    return out.getvalue()


def repeated(unit: bytes, total: int) -> Any:
    def write(body: Any) -> None:
        block = unit * (1 << 16)
        for _ in range(total // len(block)):
            body.write(block)

    return write


def long_document(paragraphs: int) -> bytes:
    return "\n\n".join(f"Part {i}. {FILLER}" for i in range(paragraphs)).encode()


class PeakRss:
    """The highest resident memory of this process while the block runs (sampled)."""

    def __init__(self) -> None:
        self.process: Any = psutil.Process()
        self.start = int(self.process.memory_info().rss)
        self.peak = self.start

    async def sample(self) -> None:
        while True:
            self.peak = max(self.peak, int(self.process.memory_info().rss))
            await asyncio.sleep(0.005)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / (1 << 20)


# --- tests ------------------------------------------------------------------------------------


async def test_a_zip_bomb_docx_fails_clearly_without_growing_the_control_plane(
    database_url: str, tmp_path: Path
) -> None:
    bomb = docx_with_body(repeated(b"<w:p/>", 1 << 30))  # 1 GiB of XML
    assert len(bomb) < 2 << 20
    async with control_plane(database_url, tmp_path) as (_app, client, _knowledge):
        kb = await create_kb(client, name="Bomb")
        memory = PeakRss()
        sampler = asyncio.create_task(memory.sample())
        try:
            response = await upload(client, kb["id"], "bomb.docx", bomb, DOCX)
            assert response.status_code == 202, response.text
            done = await wait_done(client, kb["id"], response.json()["id"])
        finally:
            sampler.cancel()
    assert done["status"] == "failed"
    assert done["error"] == "The file unpacks to more than 50 MB of text"
    print(f"zip bomb: control plane RSS grew by {memory.growth_mb:.1f} MB at most")
    assert memory.growth_mb < 100


async def test_a_paragraph_bomb_docx_fails_on_the_paragraph_bound_not_the_timeout(
    database_url: str, tmp_path: Path
) -> None:
    bomb = docx_with_body(repeated(b"<w:p/>", 1_600_000 * 6))  # 1.6 M paragraphs
    async with control_plane(database_url, tmp_path) as (_app, client, knowledge):
        kb = await create_kb(client, name="Paragraphs")
        started = time.monotonic()
        response = await upload(client, kb["id"], "paragraphs.docx", bomb, DOCX)
        assert response.status_code == 202, response.text
        done = await wait_done(client, kb["id"], response.json()["id"])
        elapsed = time.monotonic() - started
        assert await knowledge.store.count(kb["id"]) == 0
    print(f"paragraph bomb ({len(bomb)} bytes): refused in {elapsed:.2f} s")
    assert done["status"] == "failed"
    assert done["error"] == "The document has more than 50000 paragraphs"
    assert done["chunks_total"] == 0
    assert elapsed < KnowledgeSettings().timeout_s / 2


async def test_knowledge_bases_take_turns_in_the_queue(database_url: str, tmp_path: Path) -> None:
    async with control_plane(database_url, tmp_path) as (_app, client, _knowledge):
        busy = await create_kb(client, name="Busy")
        other = await create_kb(client, name="Other")
        busy_ids = []
        for i in range(4):
            response = await upload(
                client, busy["id"], f"part-{i}.txt", long_document(20), "text/plain"
            )
            assert response.status_code == 202, response.text
            busy_ids.append(response.json()["id"])
        response = await upload(
            client, other["id"], "hours.txt", text_document(FACTS["hours.txt"]), "text/plain"
        )
        assert response.status_code == 202, response.text
        other_doc = await wait_done(client, other["id"], response.json()["id"])
        busy_docs = [
            await client.get(f"/api/knowledge-bases/{busy['id']}/documents/{d}") for d in busy_ids
        ]
        statuses = [d.json()["status"] for d in busy_docs]
        # The other knowledge base's one document came right after the busy one's first.
        assert other_doc["status"] == "ready"
        assert statuses.count("ready") <= 2, statuses
        assert "queued" in statuses, statuses
        for doc_id in busy_ids:
            assert (await wait_done(client, busy["id"], doc_id))["status"] == "ready"


async def test_a_full_queue_answers_429_with_retry_after(database_url: str, tmp_path: Path) -> None:
    async with control_plane(database_url, tmp_path, max_queued=3, max_queued_per_kb=2) as (
        _app,
        client,
        knowledge,
    ):
        first = await create_kb(client, name="First")
        second = await create_kb(client, name="Second")
        document = long_document(60)
        for _ in range(2):
            accepted = await upload(client, first["id"], "a.txt", document, "text/plain")
            assert accepted.status_code == 202, accepted.text
        per_kb = await upload(client, first["id"], "a.txt", document, "text/plain")
        assert per_kb.status_code == 429, per_kb.text
        assert per_kb.headers["Retry-After"] == "30"
        assert per_kb.json()["detail"] == (
            f"Knowledge base {first['id']} already has 2 documents waiting to be ingested; "
            "retry in 30 s"
        )
        accepted = await upload(client, second["id"], "b.txt", document, "text/plain")
        assert accepted.status_code == 202, accepted.text
        full = await upload(client, second["id"], "b.txt", document, "text/plain")
        assert full.status_code == 429, full.text
        assert full.headers["Retry-After"] == "30"
        assert full.json()["detail"] == (
            "The ingestion queue is full (3 documents waiting); retry in 30 s"
        )
        listing = (await client.get(f"/api/knowledge-bases/{first['id']}/documents")).json()
        assert listing["count"] == 2

        await knowledge.wait_idle()
        again = await upload(client, first["id"], "a.txt", document, "text/plain")
        assert again.status_code == 202, again.text


async def test_queued_and_interrupted_documents_are_ingested_after_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    async with control_plane(database_url, tmp_path) as (_app, client, _knowledge):
        kb = await create_kb(client, name="Restart")
        long = await upload(client, kb["id"], "long.txt", long_document(300), "text/plain")
        queued = await upload(
            client, kb["id"], "hours.txt", text_document(FACTS["hours.txt"]), "text/plain"
        )
        assert long.status_code == queued.status_code == 202
        path = f"/api/knowledge-bases/{kb['id']}/documents"
        while (await client.get(f"{path}/{long.json()['id']}")).json()["status"] != "processing":
            await asyncio.sleep(0.02)
    # Stopped mid-ingestion: one document half-done, the other still waiting.
    async with control_plane(database_url, tmp_path, lease_s=1) as (_app, client, _knowledge):
        # still there, not failed (this control plane's worker may have taken it up already)
        waiting = (await client.get(f"{path}/{queued.json()['id']}")).json()["status"]
        assert waiting in ("queued", "processing", "ready"), waiting
        done = await wait_done(client, kb["id"], queued.json()["id"])
        assert done["status"] == "ready", done
        resumed = await wait_done(client, kb["id"], long.json()["id"])
        assert resumed["status"] == "ready", resumed
        assert resumed["attempts"] == 2
        assert resumed["chunks_embedded"] == resumed["chunks_total"]
        result = await query(client, kb["id"], QUESTIONS["hours.txt"])
        assert result["chunks"][0]["document_name"] == "hours.txt"


async def test_a_killed_ingestion_leaves_no_answering_vectors_and_is_redone(
    database_url: str, tmp_path: Path
) -> None:
    data = text_document(FACTS["parking.md"])
    stale_text = "The zebra enclosure is closed forever and parking is free for zebras."
    async with control_plane(database_url, tmp_path) as (app, client, knowledge):
        kb = await create_kb(client, name="Killed")
        response = await upload(client, kb["id"], "parking.txt", data, "text/plain")
        doc = await wait_done(client, kb["id"], response.json()["id"])
        assert doc["status"] == "ready"
        await knowledge.aclose()  # as if killed
        # The state kill -9 leaves: "processing", no heartbeat since, its upload still stored,
        # and vectors already written (here even one visible, the worst case).
        async with app.state.sessionmaker() as db:
            await crud.update_document(db, doc["id"], status="processing", chunks_embedded=1)
            row = await crud.get_document(db, kb["id"], doc["id"])
            assert row is not None
            row.updated_at = utcnow() - timedelta(minutes=10)
            db.add(row)
            # (the worker may not have deleted the ready document's upload yet)
            await db.merge(DocumentFile(document_id=doc["id"], data=data))
            await db.commit()
        [vector] = knowledge.embedder.embed([stale_text])
        await knowledge.store.upsert(
            kb["id"], [ChunkRecord(doc["id"], "parking.txt", 99, stale_text, vector)]
        )
        await knowledge.store.mark_ready(kb["id"], doc["id"])
        # Until it is ready again, none of its chunks answer.
        assert (await query(client, kb["id"], "zebra enclosure parking"))["chunks"] == []

    async with control_plane(database_url, tmp_path) as (_app, client, knowledge):
        redone = await wait_done(client, kb["id"], doc["id"])
        assert redone["status"] == "ready", redone
        assert redone["attempts"] == 2
        assert await knowledge.store.count(kb["id"], doc["id"]) == redone["chunks_total"]
        chunks = (await query(client, kb["id"], "zebra enclosure parking", top_k=10))["chunks"]
        assert chunks and all("zebra" not in c["text"] for c in chunks)
