"""Two control-plane replicas on one database and one Redis: what one keeps in memory (the
agent list, the API keys of recent requests) follows writes made through the other, or by the
CLI, at once. Real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from typer.testing import CliRunner

from stimm.cli import app as cli_app
from tests.integration.control_plane_env import agent_body, app_client, make_settings

pytestmark = pytest.mark.integration

Replica = tuple[FastAPI, httpx.AsyncClient]

HEARD_WITHIN_S = 0.5
"""How soon a replica must follow the other's write: well under the caches' own expiry, set
out of reach below, so that only the message can explain it."""


async def _listening(app: FastAPI) -> None:
    app.state.changes.start()  # the lifespan does it; the in-process transport skips it
    for _ in range(100):
        if app.state.changes.listening:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the replica never subscribed to changes")


@pytest_asyncio.fixture
async def replicas(database_url: str, redis_url: str) -> AsyncIterator[tuple[Replica, Replica]]:
    settings = make_settings(database_url, redis_url=redis_url)
    async with app_client(settings) as a, app_client(settings) as b:
        for app, _ in (a, b):
            await _listening(app)
            app.state.agent_pages.recheck_s = 3600
            app.state.api_keys.ttl_s = 3600
        yield a, b


async def _within(seconds: float, done: Callable[[], Awaitable[bool]]) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        if await done():
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)


async def test_a_key_revoked_through_one_replica_is_refused_by_the_other(
    replicas: tuple[Replica, Replica],
) -> None:
    (_, a), (app_b, b) = replicas
    created = (await a.post("/api/api-keys", json={"name": "laptop"})).json()
    laptop = {"Authorization": f"Bearer {created['key']}"}
    assert (await b.get("/api/agents", headers=laptop)).status_code == 200
    assert len(app_b.state.api_keys._keys) >= 1  # B remembers it now

    assert (await a.delete(f"/api/api-keys/{created['id']}")).status_code == 200

    async def refused() -> bool:
        return (await b.get("/api/agents", headers=laptop)).status_code == 401

    assert await _within(HEARD_WITHIN_S, refused)
    assert (await b.get("/api/agents")).status_code == 200  # B's own key still works


async def test_a_key_revoked_by_the_cli_is_refused_at_once(
    replicas: tuple[Replica, Replica], database_url: str, redis_url: str
) -> None:
    (_, a), (_, b) = replicas
    created = (await a.post("/api/api-keys", json={"name": "script"})).json()
    script = {"Authorization": f"Bearer {created['key']}"}
    for client in (a, b):
        assert (await client.get("/api/agents", headers=script)).status_code == 200

    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli_app,
        ["api-key", "revoke", created["id"]],
        env={"STIMM_DATABASE_URL": database_url, "STIMM_REDIS_URL": redis_url},
    )
    assert result.exit_code == 0, result.output

    for client in (a, b):

        async def refused(client: httpx.AsyncClient = client) -> bool:
            return (await client.get("/api/agents", headers=script)).status_code == 401

        assert await _within(HEARD_WITHIN_S, refused)


async def test_agent_writes_through_one_replica_show_in_the_others_list(
    replicas: tuple[Replica, Replica],
) -> None:
    (_, a), (_, b) = replicas

    async def names() -> set[str]:
        return {item["name"] for item in (await b.get("/api/agents")).json()["items"]}

    before = await names()  # B's page of the current version is kept
    created = (await a.post("/api/agents", json=agent_body("Night shift"))).json()

    async def listed() -> bool:
        return "Night shift" in await names()

    assert await _within(HEARD_WITHIN_S, listed)
    assert "Night shift" not in before

    renamed = await a.patch(f"/api/agents/{created['id']}", json={"name": "Day shift"})
    assert renamed.status_code == 200

    async def renamed_in_b() -> bool:
        seen = await names()
        return "Day shift" in seen and "Night shift" not in seen

    assert await _within(HEARD_WITHIN_S, renamed_in_b)

    assert (await a.delete(f"/api/agents/{created['id']}")).status_code == 204

    async def gone() -> bool:
        return "Day shift" not in await names()

    assert await _within(HEARD_WITHIN_S, gone)
