"""Knowledge-base ingestion throughput and query latency, in-process (SQLite + embedded Qdrant
in a temporary folder, the offline embedding model), through the real HTTP routes.

Prints embedding-model load time, ingestion throughput (chunks/s from the first upload to the
last document ready) and p50/p95 query latency (server-side retrieval_ms and the HTTP round
trip), and writes them to bench/results/ingest.json.

    .venv/bin/python bench/ingest.py --documents 10 --paragraphs 30 --queries 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stats import pct  # noqa: E402
from control_plane import credentials  # noqa: E402
from control_plane.core.config import Settings  # noqa: E402
from control_plane.core.db import run_migrations  # noqa: E402
from control_plane.knowledge.config import KnowledgeSettings  # noqa: E402
from control_plane.knowledge.embeddings import MiniLMEmbedder  # noqa: E402
from control_plane.knowledge.service import KnowledgeService  # noqa: E402
from control_plane.main import create_app  # noqa: E402

TOPICS = ["opening hours", "tickets", "parking", "exhibitions", "accessibility", "the cafe"]
QUESTIONS = ["When are you open on Sundays?", "How much is parking?", "Is there a lift?"]


def document(index: int, paragraphs: int, rng: random.Random) -> bytes:
    out = [f"# Visitor guide, part {index}"]
    for p in range(paragraphs):
        topic = rng.choice(TOPICS)
        out.append(
            f"Section {p} is about {topic}. Visitors often ask about {topic} before they come. "
            f"The answer depends on the day, the season and the exhibition {rng.randint(1, 99)}. "
            f"Staff at the front desk can help with {topic} at any time."
        )
    return "\n\n".join(out).encode()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stimm-bench-ingest-") as tmp:
        database_url = f"sqlite+aiosqlite:///{tmp}/stimm.db"
        await asyncio.to_thread(run_migrations, database_url)
        app = create_app(Settings(dev=True, database_url=database_url, redis_url=None))
        embedder = MiniLMEmbedder()
        started = time.perf_counter()
        await asyncio.to_thread(embedder.load)
        load_s = time.perf_counter() - started
        knowledge = KnowledgeService.from_settings(
            app.state.sessionmaker,
            database_url,
            KnowledgeSettings(data_dir=Path(tmp)),
            embedder=embedder,
        )
        app.state.knowledge = knowledge
        async with app.state.sessionmaker() as db:
            _, key = await credentials.create_api_key(db, "bench")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://bench",
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        ) as client:
            kb = (await client.post("/api/knowledge-bases", json={"name": "bench"})).json()
            rng = random.Random(7)
            docs = [document(i, args.paragraphs, rng) for i in range(args.documents)]
            started = time.perf_counter()
            for i, data in enumerate(docs):
                response = await client.post(
                    f"/api/knowledge-bases/{kb['id']}/documents",
                    files={"file": (f"guide-{i}.md", data, "text/markdown")},
                )
                response.raise_for_status()
            await knowledge.wait_idle()
            ingest_s = time.perf_counter() - started
            listing = (await client.get(f"/api/knowledge-bases/{kb['id']}/documents")).json()
            assert all(d["status"] == "ready" for d in listing["items"]), listing
            chunks = sum(d["chunks_total"] for d in listing["items"])

            server_ms: list[float] = []
            round_trip_ms: list[float] = []
            for i in range(args.queries):
                body = {"query": QUESTIONS[i % len(QUESTIONS)], "top_k": 3}
                started = time.perf_counter()
                response = await client.post(f"/api/knowledge-bases/{kb['id']}/query", json=body)
                round_trip_ms.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                server_ms.append(response.json()["retrieval_ms"])
        await knowledge.aclose()
        await app.state.engine.dispose()
    return {
        "embedding_model": embedder.name,
        "model_load_s": round(load_s, 3),
        "documents": args.documents,
        "bytes": sum(len(d) for d in docs),
        "chunks": chunks,
        "ingest_s": round(ingest_s, 3),
        "chunks_per_s": round(chunks / ingest_s, 1),
        "queries": args.queries,
        "retrieval_ms_p50": round(pct(server_ms, 0.5), 2),
        "retrieval_ms_p95": round(pct(server_ms, 0.95), 2),
        "http_ms_p50": round(pct(round_trip_ms, 0.5), 2),
        "http_ms_p95": round(pct(round_trip_ms, 0.95), 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10)
    parser.add_argument("--paragraphs", type=int, default=30)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    for name, value in result.items():
        print(f"{name:>18}: {value}")
    out = ROOT / "bench" / "results" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
