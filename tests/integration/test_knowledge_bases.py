"""Knowledge bases against real PostgreSQL and Qdrant in embedded mode (a temporary folder),
with the offline embedding model: uploads in five formats, background ingestion, retrieval,
deletion, and clear refusals of bad uploads. The documents are generated here."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docx
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fpdf import FPDF

from control_plane.knowledge.config import KnowledgeSettings
from control_plane.knowledge.service import KnowledgeService
from tests.integration.control_plane_env import (
    WORKER_HEADERS,
    app_client,
    make_settings,
)

pytestmark = pytest.mark.integration

MAX_UPLOAD_BYTES = 64 * 1024
INGESTION_TIMEOUT_S = 90

FILLER = (
    "The city museum has three floors of permanent collections and a rooftop terrace. "
    "Tickets can be bought at the entrance or online, and children under twelve enter free. "
    "Audio guides are available in English, French and German at the information point."
)
# One fact per document; each is stated in that document only.
FACTS = {
    "hours.txt": "The museum cafe serves breakfast from eight until eleven in the morning.",
    "parking.md": "Visitors can park in the underground garage on Elm Street for four euros "
    "per hour.",
    "tours.pdf": "Guided tours of the dinosaur hall start every day at two in the afternoon "
    "and last ninety minutes.",
    "lost-property.docx": "Lost property is kept at the front desk for thirty days, after which "
    "it is donated to charity.",
    "photography.html": "Photography with flash is not allowed in the painting galleries.",
}
QUESTIONS = {
    "hours.txt": "When can I have breakfast at the cafe?",
    "parking.md": "Where do I park my car and how much does it cost?",
    "tours.pdf": "What time does the dinosaur tour begin?",
    "lost-property.docx": "I forgot my umbrella, how long do you keep lost items?",
    "photography.html": "Can I take pictures with a flash of the paintings?",
}


# --- generated documents ----------------------------------------------------------------------


def text_document(fact: str) -> bytes:
    return f"Visitor information\n\n{FILLER}\n\n{fact}\n\n{FILLER}\n".encode()


def markdown_document(fact: str) -> bytes:
    return f"# Getting here\n\n{FILLER}\n\n## Parking\n\n{fact}\n\n- {FILLER}\n".encode()


def pdf_document(fact: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for paragraph in ("Tours and events", FILLER, fact, FILLER):
        pdf.multi_cell(0, 8, paragraph)
        pdf.ln(6)
    return bytes(pdf.output())


def docx_document(fact: str) -> bytes:
    document = docx.Document()
    document.add_heading("Services", level=1)
    document.add_paragraph(FILLER)
    document.add_paragraph(fact)
    document.add_paragraph(FILLER)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def html_document(fact: str) -> bytes:
    head, tail = fact.split(" is not allowed ")
    return (
        "<!doctype html><html><head><title>Rules</title><style>p {color: red}</style>"
        "<script>var secret = 'do not index';</script></head><body>"
        f"<h1>House rules</h1><p>{FILLER}</p>"
        f"<p>{head} is <b>not allowed</b> {tail}</p><div>{FILLER}</div></body></html>"
    ).encode()


BUILDERS = {
    "hours.txt": (text_document, "text/plain"),
    "parking.md": (markdown_document, "text/markdown"),
    "tours.pdf": (pdf_document, "application/pdf"),
    "lost-property.docx": (
        docx_document,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    "photography.html": (html_document, "text/html"),
}


# --- fixtures ---------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def qdrant_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("qdrant")


@pytest_asyncio.fixture(scope="module")
async def app_and_client(
    database_url: str, qdrant_dir: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with app_client(make_settings(database_url)) as (app, client):
        app.state.knowledge = KnowledgeService.from_settings(
            app.state.sessionmaker,
            database_url,
            KnowledgeSettings(data_dir=qdrant_dir, max_upload_bytes=MAX_UPLOAD_BYTES),
        )
        try:
            yield app, client
        finally:
            await app.state.knowledge.aclose()


@pytest.fixture
def knowledge(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> KnowledgeService:
    service: KnowledgeService = app_and_client[0].state.knowledge
    return service


# --- helpers ----------------------------------------------------------------------------------


async def create_kb(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Museum", "chunk_size": 300, "chunk_overlap": 60, **overrides}
    response = await client.post("/api/knowledge-bases", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def upload(
    client: httpx.AsyncClient, kb_id: str, name: str, data: bytes, content_type: str
) -> httpx.Response:
    return await client.post(
        f"/api/knowledge-bases/{kb_id}/documents", files={"file": (name, data, content_type)}
    )


async def wait_done(
    client: httpx.AsyncClient, kb_id: str, doc_id: str, seen: list[str] | None = None
) -> dict[str, Any]:
    """Poll the document until it is ready or failed; records each status seen in ``seen``."""
    deadline = time.monotonic() + INGESTION_TIMEOUT_S
    while True:
        response = await client.get(f"/api/knowledge-bases/{kb_id}/documents/{doc_id}")
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()
        if seen is not None and (not seen or seen[-1] != doc["status"]):
            seen.append(doc["status"])
        if doc["status"] in ("ready", "failed"):
            return doc
        assert time.monotonic() < deadline, f"ingestion still {doc['status']}: {doc}"
        await asyncio.sleep(0.02)


def error_message(response: httpx.Response) -> str:
    """The message of an error answer: a string, or FastAPI's list of validation errors."""
    detail = response.json()["detail"]
    return detail if isinstance(detail, str) else " ".join(e["msg"] for e in detail)


async def query(client: httpx.AsyncClient, kb_id: str, text: str, top_k: int = 3) -> Any:
    response = await client.post(
        f"/api/knowledge-bases/{kb_id}/query", json={"query": text, "top_k": top_k}
    )
    assert response.status_code == 200, response.text
    return response.json()


# --- tests ------------------------------------------------------------------------------------


async def test_knowledge_base_crud_round_trip(client: httpx.AsyncClient) -> None:
    created = await create_kb(client, name="Handbook", description="Staff handbook")
    assert created["embedding_model"] == "all-MiniLM-L6-v2-int8"
    assert created["embedding_dim"] == 384
    assert created["document_count"] == 0
    assert (await client.get(f"/api/knowledge-bases/{created['id']}")).json() == created

    listing = (await client.get("/api/knowledge-bases", params={"limit": 500})).json()
    assert created["id"] in [kb["id"] for kb in listing["items"]]

    patched = await client.patch(
        f"/api/knowledge-bases/{created['id']}", json={"name": "Handbook v2", "chunk_size": 500}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Handbook v2"
    assert patched.json()["chunk_size"] == 500
    assert patched.json()["description"] == "Staff handbook"

    bad = await client.patch(f"/api/knowledge-bases/{created['id']}", json={"chunk_overlap": 500})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "chunk_overlap"]
    assert "smaller than chunk_size" in error_message(bad)
    null_size = await client.patch(
        f"/api/knowledge-bases/{created['id']}", json={"chunk_size": None}
    )
    assert null_size.status_code == 422
    assert error_message(null_size) == "chunk_size cannot be null"
    assert (await client.get(f"/api/knowledge-bases/{created['id']}")).json()["chunk_size"] == 500
    bad_create = await client.post(
        "/api/knowledge-bases", json={"name": "x", "chunk_size": 200, "chunk_overlap": 200}
    )
    assert bad_create.status_code == 422

    missing = await client.get("/api/knowledge-bases/no-such-kb")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Knowledge base no-such-kb not found"}

    assert (await client.delete(f"/api/knowledge-bases/{created['id']}")).status_code == 204
    assert (await client.get(f"/api/knowledge-bases/{created['id']}")).status_code == 404


async def test_each_fact_is_found_in_its_own_document_until_it_is_deleted(
    client: httpx.AsyncClient, knowledge: KnowledgeService
) -> None:
    kb = await create_kb(client)
    docs: dict[str, dict[str, Any]] = {}
    for name, (build, content_type) in BUILDERS.items():
        response = await upload(client, kb["id"], name, build(FACTS[name]), content_type)
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "queued"
        assert response.json()["content_type"] == content_type
        docs[name] = response.json()

    last = list(docs)[-1]
    statuses: list[str] = []
    finished = await wait_done(client, kb["id"], docs[last]["id"], statuses)
    # The last upload waits behind the others, then is processed, then is ready.
    assert statuses[0] == "queued"
    assert statuses[-1] == "ready"
    assert [s for s in ["queued", "processing", "ready"] if s in statuses] == statuses
    for name, doc in docs.items():
        done = await wait_done(client, kb["id"], doc["id"])
        assert done["status"] == "ready", done
        assert done["error"] is None
        assert done["chunks_total"] >= 2, f"{name}: {done}"
        assert done["chunks_embedded"] == done["chunks_total"]
    assert finished["chunks_embedded"] == finished["chunks_total"]

    listing = (await client.get(f"/api/knowledge-bases/{kb['id']}/documents")).json()
    assert listing["count"] == len(BUILDERS)
    assert {d["filename"]: d["status"] for d in listing["items"]} == dict.fromkeys(
        BUILDERS, "ready"
    )
    assert (await client.get(f"/api/knowledge-bases/{kb['id']}")).json()["document_count"] == 5

    for name, question in QUESTIONS.items():
        result = await query(client, kb["id"], question)
        top = result["chunks"][0]
        assert top["document_name"] == name, (question, result)
        assert top["document_id"] == docs[name]["id"]
        assert FACTS[name].split()[-3] in top["text"]
        assert result["retrieval_ms"] > 0
        scores = [c["score"] for c in result["chunks"]]
        assert scores == sorted(scores, reverse=True)
    html_text = " ".join(
        c["text"] for c in (await query(client, kb["id"], "house rules", top_k=20))["chunks"]
    )
    assert "do not index" not in html_text and "color: red" not in html_text

    # The worker retrieves through the same path, with its own credential only.
    worker_path = f"/api/worker/knowledge-bases/{kb['id']}/query"
    body = {"query": QUESTIONS["tours.pdf"], "top_k": 3}
    as_worker = await client.post(worker_path, json=body, headers=WORKER_HEADERS)
    assert as_worker.status_code == 200, as_worker.text
    assert as_worker.json()["chunks"][0]["document_name"] == "tours.pdf"
    wrong_token = await client.post(
        worker_path, json=body, headers={"Authorization": "Bearer not-the-worker-token"}
    )
    assert wrong_token.status_code == 401

    pdf_id = docs["tours.pdf"]["id"]
    assert await knowledge.store.count(kb["id"], pdf_id) == docs_chunks(listing, pdf_id)
    deleted = await client.delete(f"/api/knowledge-bases/{kb['id']}/documents/{pdf_id}")
    assert deleted.status_code == 204
    assert (
        await client.get(f"/api/knowledge-bases/{kb['id']}/documents/{pdf_id}")
    ).status_code == 404
    assert await knowledge.store.count(kb["id"], pdf_id) == 0
    after = await query(client, kb["id"], QUESTIONS["tours.pdf"], top_k=10)
    assert after["chunks"], "the other documents still answer"
    assert all(c["document_id"] != pdf_id for c in after["chunks"])
    assert all("dinosaur" not in c["text"] for c in after["chunks"])
    # The others are untouched.
    still = await query(client, kb["id"], QUESTIONS["parking.md"])
    assert still["chunks"][0]["document_name"] == "parking.md"


def docs_chunks(listing: dict[str, Any], doc_id: str) -> int:
    [doc] = [d for d in listing["items"] if d["id"] == doc_id]
    return int(doc["chunks_total"])


@pytest.mark.parametrize(
    ("name", "data", "content_type", "status_code", "message"),
    [
        ("photo.png", b"\x89PNG\r\n\x1a\nxxxx", "image/png", 415, "Unsupported document type"),
        ("setup.exe", b"MZ\x90\x00", "application/octet-stream", 415, "upload one of"),
        ("empty.txt", b"", "text/plain", 422, "is empty"),
        ("blank.md", b"  \n\n \t", "text/markdown", 422, "is empty"),
        ("fake.pdf", b"this is not a pdf at all", "application/pdf", 422, "not a PDF"),
        ("fake.docx", b"plain text", "application/octet-stream", 422, "not a DOCX"),
        ("binary.txt", b"abc\x00\x01\x02def", "text/plain", 422, "binary"),
        ("big.txt", b"a" * (MAX_UPLOAD_BYTES + 1), "text/plain", 413, "upload limit"),
    ],
)
async def test_bad_uploads_are_refused_clearly(
    client: httpx.AsyncClient,
    name: str,
    data: bytes,
    content_type: str,
    status_code: int,
    message: str,
) -> None:
    kb = await create_kb(client, name=f"Refusals {name}")
    response = await upload(client, kb["id"], name, data, content_type)
    assert response.status_code == status_code, response.text
    assert message in error_message(response)
    listing = (await client.get(f"/api/knowledge-bases/{kb['id']}/documents")).json()
    assert listing["count"] == 0


async def test_corrupt_pdf_fails_with_a_reason_and_loses_nothing_else(
    client: httpx.AsyncClient,
) -> None:
    kb = await create_kb(client, name="Corrupt")
    good = await upload(
        client, kb["id"], "hours.txt", text_document(FACTS["hours.txt"]), "text/plain"
    )
    broken = pdf_document(FACTS["tours.pdf"])[:300] + b"\x00garbage" * 20
    bad = await upload(client, kb["id"], "broken.pdf", broken, "application/pdf")
    assert bad.status_code == 202, bad.text

    failed = await wait_done(client, kb["id"], bad.json()["id"])
    assert failed["status"] == "failed"
    assert failed["error"], failed
    assert "PDF" in failed["error"] or "no text" in failed["error"]
    ok = await wait_done(client, kb["id"], good.json()["id"])
    assert ok["status"] == "ready"
    result = await query(client, kb["id"], QUESTIONS["hours.txt"])
    assert result["chunks"][0]["document_name"] == "hours.txt"
    assert all(c["document_name"] != "broken.pdf" for c in result["chunks"])


async def test_unknown_knowledge_base_or_document_is_404(client: httpx.AsyncClient) -> None:
    data = text_document("x")
    assert (await upload(client, "nope", "a.txt", data, "text/plain")).status_code == 404
    assert (
        await client.post("/api/knowledge-bases/nope/query", json={"query": "hi"})
    ).status_code == 404
    kb = await create_kb(client, name="Empty")
    assert (await client.get(f"/api/knowledge-bases/{kb['id']}/documents/nope")).status_code == 404
    assert (
        await client.delete(f"/api/knowledge-bases/{kb['id']}/documents/nope")
    ).status_code == 404
    empty = await query(client, kb["id"], "anything at all")
    assert empty["chunks"] == []
    bad_query = await client.post(f"/api/knowledge-bases/{kb['id']}/query", json={"query": ""})
    assert bad_query.status_code == 422


async def test_a_knowledge_base_in_use_is_not_deleted_until_detached(
    client: httpx.AsyncClient, knowledge: KnowledgeService
) -> None:
    kb = await create_kb(client, name="Attached")
    uploaded = await upload(
        client, kb["id"], "parking.md", markdown_document(FACTS["parking.md"]), "text/markdown"
    )
    doc = await wait_done(client, kb["id"], uploaded.json()["id"])
    assert doc["status"] == "ready"
    agent = await client.post(
        "/api/agents",
        json={
            "name": "Museum guide",
            "instructions": "You answer visitors' questions about the museum.",
            "llm": {"provider": "openai", "model": "gpt-4o-mini"},
            "knowledge_base_id": kb["id"],
        },
    )
    assert agent.status_code == 201, agent.text

    refused = await client.delete(f"/api/knowledge-bases/{kb['id']}")
    assert refused.status_code == 409
    assert "Museum guide" in refused.json()["detail"]
    assert agent.json()["id"] in refused.json()["detail"]
    assert (await query(client, kb["id"], QUESTIONS["parking.md"]))["chunks"]

    detached = await client.patch(
        f"/api/agents/{agent.json()['id']}", json={"knowledge_base_id": None}
    )
    assert detached.status_code == 200, detached.text
    assert (await client.delete(f"/api/knowledge-bases/{kb['id']}")).status_code == 204
    assert (await client.get(f"/api/knowledge-bases/{kb['id']}")).status_code == 404
    assert await knowledge.store.count(kb["id"]) == 0
