"""Provider secrets (encrypted, write-only, never echoed or logged), the provider catalog, and
the Redis config cache the worker reads through. Real PostgreSQL and Redis."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from redis.asyncio import Redis

from control_plane.cache import agent_key
from control_plane.models import Secret
from control_plane.security import SecretBox
from stimm.catalog import CATALOG
from tests.integration.control_plane_env import (
    DATABASE_URL,
    WORKER_HEADERS,
    app_client,
    fresh_database,
    make_settings,
)

pytestmark = pytest.mark.integration

OPENAI_KEY = "sk-test-" + secrets.token_hex(16)


@pytest_asyncio.fixture(scope="module")
async def app_and_client(
    database_url: str, redis_url: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with app_client(make_settings(database_url, redis_url=redis_url)) as pair:
        yield pair


def agent_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Support line",
        "instructions": "Help callers with their orders.",
        "greeting": "Hi, this is support.",
        "llm": {"provider": "openai", "model": "gpt-4.1-mini"},
        **overrides,
    }


async def test_secret_is_encrypted_reported_as_set_and_sent_only_to_the_worker(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_and_client
    put = await client.put("/api/secrets/OPENAI_API_KEY", json={"value": OPENAI_KEY})
    assert put.status_code == 200
    assert put.json()["set"] is True and "llm/openai" in put.json()["used_by"]

    listing = {s["name"]: s for s in (await client.get("/api/secrets")).json()["items"]}
    assert listing["OPENAI_API_KEY"]["set"] is True
    assert listing["DEEPGRAM_API_KEY"]["set"] is False  # known from the catalog, not set

    providers = (await client.get("/api/providers")).json()
    openai_llm = next(p for p in providers["llm"] if p["name"] == "openai")
    assert openai_llm["secrets"] == [{"name": "OPENAI_API_KEY", "set": True}]
    groq = next(p for p in providers["llm"] if p["name"] == "groq")
    assert groq["secrets"] == [{"name": "GROQ_API_KEY", "set": False}]
    assert {r: [p["name"] for p in providers[r]] for r in ("stt", "llm", "tts")} == {
        r: list(CATALOG[r]) for r in ("stt", "llm", "tts")
    }

    async with app.state.sessionmaker() as db:
        row = await db.get(Secret, "OPENAI_API_KEY")
    assert row is not None and OPENAI_KEY not in row.ciphertext
    assert SecretBox(app.state.settings.secret_key.get_secret_value()).decrypt(row.ciphertext) == (
        OPENAI_KEY
    )

    hosted = (await client.post("/api/agents", json=agent_body())).json()
    config = await client.get(f"/api/worker/agents/{hosted['id']}", headers=WORKER_HEADERS)
    assert config.json()["secrets"] == {"OPENAI_API_KEY": OPENAI_KEY}

    # A self-hosted OpenAI-compatible server never receives the hosted provider's key.
    own_server = agent_body(
        llm={"provider": "openai", "model": "mine", "options": {"base_url": "http://gpu/v1"}}
    )
    own = (await client.post("/api/agents", json=own_server)).json()
    config = await client.get(f"/api/worker/agents/{own['id']}", headers=WORKER_HEADERS)
    assert config.json()["secrets"] == {}

    deleted = await client.delete("/api/secrets/OPENAI_API_KEY")
    assert deleted.status_code == 204
    config = await client.get(f"/api/worker/agents/{hosted['id']}", headers=WORKER_HEADERS)
    assert config.json()["secrets"] == {}
    assert (await client.delete("/api/secrets/OPENAI_API_KEY")).status_code == 404
    bad_name = await client.put("/api/secrets/not-a-name", json={"value": "x"})
    assert bad_name.status_code == 422


async def test_a_secret_appears_in_no_response_and_no_log_line(
    app_and_client: tuple[FastAPI, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    app, client = app_and_client
    value = "dg-" + secrets.token_hex(20)
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []

    async def record(response: httpx.Response) -> httpx.Response:
        bodies.append(
            response.text + " " + " ".join(f"{k}:{v}" for k, v in response.headers.items())
        )
        return response

    await record(await client.put("/api/secrets/DEEPGRAM_API_KEY", json={"value": value}))
    # Rejected writes must not echo the value either (FastAPI's 422 normally does).
    await record(await client.put("/api/secrets/DEEPGRAM_API_KEY", json={"value": value * 400}))
    await record(await client.put("/api/secrets/DEEPGRAM_API_KEY", json={"value": value, "x": 1}))
    await record(await client.put("/api/secrets/bad-name", json={"value": value}))
    agent = (
        await client.post(
            "/api/agents", json=agent_body(stt={"provider": "deepgram", "model": "nova-3"})
        )
    ).json()

    # Crawl every GET the API offers, following ids we know.
    paths = ["/health"]
    for path, operations in app.openapi()["paths"].items():
        if "get" in operations and not path.startswith("/api/worker"):
            paths.append(path.replace("{agent_id}", agent["id"]).replace("{name}", "X"))
    for path in paths:
        if "{" not in path:
            await record(await client.get(path))
    assert len(bodies) >= 8
    leaks = [b for b in bodies if value in b]
    assert leaks == []
    assert [r.getMessage() for r in caplog.records if value in r.getMessage()] == []
    assert value not in caplog.text

    # The one place it goes: the worker's config fetch.
    config = await client.get(f"/api/worker/agents/{agent['id']}", headers=WORKER_HEADERS)
    assert config.json()["secrets"] == {"DEEPGRAM_API_KEY": value}


async def test_agent_update_invalidates_the_cached_config(
    app_and_client: tuple[FastAPI, httpx.AsyncClient], redis_url: str
) -> None:
    _, client = app_and_client
    agent = (await client.post("/api/agents", json=agent_body())).json()
    path = f"/api/worker/agents/{agent['id']}"
    redis = Redis.from_url(redis_url)
    try:
        first = (await client.get(path, headers=WORKER_HEADERS)).json()
        assert first["greeting"] == "Hi, this is support."
        cached = await redis.get(agent_key(agent["id"]))
        assert isinstance(cached, bytes) and b"Hi, this is support." in cached
        assert OPENAI_KEY.encode() not in cached and b"secrets" not in cached

        # The cache is what the worker reads: a second fetch does not touch the table.
        await redis.set(agent_key(agent["id"]), cached.replace(b"support.", b"cached."))
        assert (await client.get(path, headers=WORKER_HEADERS)).json()["greeting"] == (
            "Hi, this is cached."
        )

        patched = await client.patch(f"/api/agents/{agent['id']}", json={"greeting": "New!"})
        assert patched.status_code == 200
        assert await redis.get(agent_key(agent["id"])) is None
        assert (await client.get(path, headers=WORKER_HEADERS)).json()["greeting"] == "New!"

        assert (await client.delete(f"/api/agents/{agent['id']}")).status_code == 204
        assert await redis.get(agent_key(agent["id"])) is None
        assert (await client.get(path, headers=WORKER_HEADERS)).status_code == 404
    finally:
        await redis.aclose()


async def test_health_reports_redis(
    app_and_client: tuple[FastAPI, httpx.AsyncClient], tmp_path: Path
) -> None:
    _, client = app_and_client
    assert (await client.get("/health")).json()["redis"] == "ok"
    async with (
        fresh_database(DATABASE_URL) as url,
        app_client(make_settings(url, redis_url="redis://127.0.0.1:1/0"), authenticated=False) as (
            _,
            down,
        ),
    ):
        body = (await down.get("/health")).json()
    assert body["redis"].startswith("error: ")
    assert body["status"] == "degraded"
