"""At most one default agent, however many requests create or choose one at once. Real
PostgreSQL for the races; SQLite for the migration that repairs older databases."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from alembic import command

from control_plane.core.db import alembic_config
from tests.integration.control_plane_env import (
    DATABASE_URL,
    agent_body,
    app_client,
    fresh_database,
    make_settings,
)

pytestmark = pytest.mark.integration

CONCURRENT = 60


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with fresh_database(DATABASE_URL) as url, app_client(make_settings(url)) as (_, http):
        yield http


async def defaults(client: httpx.AsyncClient) -> list[str]:
    listing = (await client.get("/api/agents", params={"limit": 500})).json()
    return [a["id"] for a in listing["items"] if a["is_default"]]


async def test_agents_created_at_once_on_an_empty_deployment_make_one_default(
    client: httpx.AsyncClient,
) -> None:
    responses = await asyncio.gather(
        *(client.post("/api/agents", json=agent_body(f"Agent {i}")) for i in range(CONCURRENT))
    )
    assert [r.status_code for r in responses] == [201] * CONCURRENT, [
        r.text for r in responses if r.status_code != 201
    ]
    marked = [r.json()["id"] for r in responses if r.json()["is_default"]]
    assert len(marked) == 1
    assert await defaults(client) == marked
    assert (await client.get("/api/agents/default")).json()["id"] == marked[0]


async def test_choosing_the_default_at_once_leaves_exactly_one(client: httpx.AsyncClient) -> None:
    ids = [
        (await client.post("/api/agents", json=agent_body(f"Agent {i}"))).json()["id"]
        for i in range(12)
    ]
    responses = await asyncio.gather(*(client.put(f"/api/agents/{i}/default") for i in ids))
    codes = {r.status_code for r in responses}
    assert codes <= {200, 409}, [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert "try again" in r.json()["detail"]
    chosen = await defaults(client)
    assert len(chosen) == 1
    assert (await client.put(f"/api/agents/{ids[0]}/default")).status_code == 200
    assert await defaults(client) == [ids[0]]


def test_migration_keeps_the_oldest_of_several_defaults(tmp_path: Path) -> None:
    path = tmp_path / "stimm.db"
    config = alembic_config(f"sqlite+aiosqlite:///{path}")
    command.upgrade(config, "0005_session_claim")
    with sqlite3.connect(path) as conn:
        for agent_id, created in [
            ("b", "2026-01-02 00:00:00"),
            ("a", "2026-01-01 00:00:00"),
            ("c", "2026-01-03 00:00:00"),
        ]:
            conn.execute(
                "INSERT INTO agent (id, name, instructions, language, stt, llm, tts,"
                " turn_taking, tools, rag, is_default, created_at, updated_at)"
                " VALUES (?, ?, 'x', 'en', '[]', '[]', '[]', '{}', '[]', '{}', 1, ?, ?)",
                (agent_id, agent_id, created, created),
            )
    command.upgrade(config, "heads")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT id FROM agent WHERE is_default ORDER BY id").fetchall()
        assert rows == [("a",)]
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE agent SET is_default = 1 WHERE id = 'b'")


async def test_the_agent_list_of_another_replica_shows_every_change_at_once() -> None:
    """The list is served from a per-replica cache of its pages: a change made through one
    replica — a new agent, an edit, the default moved, a delete — is in the other's next list."""
    async with (
        fresh_database(DATABASE_URL) as url,
        app_client(make_settings(url)) as (_, first),
        app_client(make_settings(url)) as (_, second),
    ):

        async def listed() -> dict[str, tuple[str, bool]]:
            body = (await second.get("/api/agents")).json()
            assert body["count"] == len(body["items"])
            return {a["id"]: (a["name"], a["is_default"]) for a in body["items"]}

        x = (await first.post("/api/agents", json=agent_body("X"))).json()["id"]
        assert await listed() == {x: ("X", True)}
        y = (await first.post("/api/agents", json=agent_body("Y"))).json()["id"]
        assert await listed() == {x: ("X", True), y: ("Y", False)}
        assert await listed() == {x: ("X", True), y: ("Y", False)}  # the cached page

        assert (await first.patch(f"/api/agents/{x}", json={"name": "X2"})).status_code == 200
        assert await listed() == {x: ("X2", True), y: ("Y", False)}
        assert (await first.put(f"/api/agents/{y}/default")).status_code == 200
        assert await listed() == {x: ("X2", False), y: ("Y", True)}
        assert (await first.delete(f"/api/agents/{x}")).status_code == 204
        assert await listed() == {y: ("Y", True)}
