"""Publishable keys: managed with an API key; a widget with one can only start sessions with
its agents, from its allowed origins (CORS answered for those only), within per-key and
per-address limits. Real PostgreSQL; LiveKit is a closed port, so a session that passed every
check ends in 503."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from tests.integration.control_plane_env import (
    DATABASE_URL,
    app_client,
    fresh_database,
    make_settings,
)

pytestmark = pytest.mark.integration

AGENT = {"name": "Shop", "instructions": "You answer.", "llm": {"provider": "openai"}}
SITE = "https://shop.example.com"
OTHER_SITE = "https://evil.example.net"


@pytest_asyncio.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    async with fresh_database(DATABASE_URL) as url:
        yield url


@asynccontextmanager
async def visitor(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser at ``address``: no API key, only what the widget sends."""
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://control-plane") as c:
        yield c


async def make_key(client: httpx.AsyncClient, agent_ids: list[str]) -> dict[str, object]:
    resp = await client.post(
        "/api/publishable-keys",
        json={"name": "shop", "agent_ids": agent_ids, "allowed_origins": [SITE + "/"]},
    )
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def test_keys_are_created_listed_and_revoked_and_bad_input_is_refused(
    database_url: str,
) -> None:
    async with app_client(make_settings(database_url)) as (_, client):
        agent = (await client.post("/api/agents", json=AGENT)).json()
        bad_origin = await client.post(
            "/api/publishable-keys",
            json={"name": "x", "agent_ids": [agent["id"]], "allowed_origins": ["https://x/a"]},
        )
        assert bad_origin.status_code == 422
        assert "more than an origin" in bad_origin.text
        no_agent = await client.post(
            "/api/publishable-keys",
            json={"name": "x", "agent_ids": ["nope"], "allowed_origins": [SITE]},
        )
        assert no_agent.status_code == 404 and "Agent nope not found" in no_agent.text

        key = await make_key(client, [agent["id"]])
        assert str(key["key"]).startswith("stimm_pk_")
        assert key["allowed_origins"] == [SITE]
        listed = (await client.get("/api/publishable-keys")).json()
        assert key["id"] in [k["id"] for k in listed["items"]]
        revoked = await client.delete(f"/api/publishable-keys/{key['id']}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        assert (await client.delete("/api/publishable-keys/nope")).status_code == 404


async def test_the_widget_starts_sessions_only_for_its_agents_from_its_origins(
    database_url: str,
) -> None:
    async with app_client(make_settings(database_url)) as (app, client):
        agent = (await client.post("/api/agents", json=AGENT)).json()
        other_agent = (await client.post("/api/agents", json={**AGENT, "name": "Other"})).json()
        key = await make_key(client, [agent["id"]])
        auth = {"Authorization": f"Bearer {key['key']}"}
        async with visitor(app, "198.51.100.7") as browser:
            preflight = {"Access-Control-Request-Method": "POST"}
            ok = await browser.options(
                "/api/widget/sessions", headers={**preflight, "Origin": SITE}
            )
            assert ok.status_code == 204
            assert ok.headers["access-control-allow-origin"] == SITE
            assert "authorization" in ok.headers["access-control-allow-headers"].lower()
            refused = await browser.options(
                "/api/widget/sessions", headers={**preflight, "Origin": OTHER_SITE}
            )
            assert refused.status_code == 403
            assert "access-control-allow-origin" not in refused.headers

            from_other = await browser.post(
                "/api/widget/sessions", json={}, headers={**auth, "Origin": OTHER_SITE}
            )
            assert from_other.status_code == 403
            assert "not allowed to use this publishable key" in from_other.json()["detail"]
            assert "access-control-allow-origin" not in from_other.headers
            no_origin = await browser.post("/api/widget/sessions", json={}, headers=auth)
            assert no_origin.status_code == 403

            site = {**auth, "Origin": SITE}
            wrong_agent = await browser.post(
                "/api/widget/sessions", json={"agent_id": other_agent["id"]}, headers=site
            )
            assert wrong_agent.status_code == 403
            assert "cannot start sessions with agent" in wrong_agent.json()["detail"]
            assert wrong_agent.headers["access-control-allow-origin"] == SITE

            # every check passed; the closed LiveKit port is what refuses it
            started = await browser.post("/api/widget/sessions", json={}, headers=site)
            assert started.status_code == 503, started.text
            assert started.headers["access-control-allow-origin"] == SITE

            sessions = (await client.get("/api/sessions", params={"agent_id": agent["id"]})).json()
            assert sessions["count"] == 1
            assert (
                await client.get("/api/sessions", params={"agent_id": other_agent["id"]})
            ).json()["count"] == 0

            await client.delete(f"/api/publishable-keys/{key['id']}")
            gone = await browser.post("/api/widget/sessions", json={}, headers=site)
            assert gone.status_code == 401
            assert gone.json()["detail"] == "The publishable key is unknown or revoked"
            after = await browser.options(
                "/api/widget/sessions", headers={**preflight, "Origin": SITE}
            )
            assert after.status_code == 403  # no active key lists the site any more


async def test_sessions_are_limited_per_address_and_per_key(database_url: str) -> None:
    settings = make_settings(
        database_url,
        widget_sessions_per_minute_per_address=2,
        widget_sessions_per_minute_per_key=3,
    )
    async with app_client(settings) as (app, client):
        agent = (await client.post("/api/agents", json=AGENT)).json()
        key = await make_key(client, [agent["id"]])
        site = {"Authorization": f"Bearer {key['key']}", "Origin": SITE}
        async with visitor(app, "198.51.100.1") as first, visitor(app, "198.51.100.2") as second:
            for _ in range(2):
                assert (await first.post("/api/widget/sessions", headers=site)).status_code == 503
            refused = await first.post("/api/widget/sessions", headers=site)
            assert refused.status_code == 429
            assert "STIMM_WIDGET_SESSIONS_PER_MINUTE_PER_ADDRESS" in refused.json()["detail"]
            assert int(refused.headers["Retry-After"]) >= 1
            assert refused.headers["access-control-allow-origin"] == SITE

            # another visitor still may, until the key's own budget is spent
            assert (await second.post("/api/widget/sessions", headers=site)).status_code == 503
            over = await second.post("/api/widget/sessions", headers=site)
            assert over.status_code == 429
            assert "STIMM_WIDGET_SESSIONS_PER_MINUTE_PER_KEY" in over.json()["detail"]
