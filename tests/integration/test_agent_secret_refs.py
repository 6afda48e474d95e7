"""API keys and webhook header values written into an agent: stored as secrets, returned only as
``{"secret": NAME}`` references, sent in plaintext to the worker alone; plaintext saved by
earlier versions moved into the secrets store at start. Real PostgreSQL."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import text

from control_plane.models import Agent
from stimm.schema import SECRET_NAME_PATTERN, AgentConfig
from tests.integration.control_plane_env import (
    DATABASE_URL,
    WORKER_HEADERS,
    app_client,
    fresh_database,
    make_settings,
)

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def app_and_client() -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with (
        fresh_database(DATABASE_URL) as url,
        app_client(make_settings(url)) as pair,
    ):
        yield pair


def agent_body(key: Any, authorization: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "Bookings",
        "instructions": "Book tables.",
        "llm": {"provider": "openrouter", "options": {"api_key": key}},
        "tools": [
            {
                "type": "webhook",
                "name": "book_table",
                "description": "Books a table.",
                "url": "https://bookings.example/api/book",
                "headers": {"Authorization": authorization, "X-Tenant": "acme"},
            }
        ],
        **overrides,
    }


async def database_text(app: FastAPI) -> str:
    """Every agent and secret row as text, as someone reading the database would see them."""
    async with app.state.sessionmaker() as db:
        agents = (await db.exec(text("SELECT * FROM agent"))).all()
        stored = (await db.exec(text("SELECT * FROM secret"))).all()
    return repr(agents) + repr(stored)


async def worker_config(client: httpx.AsyncClient, agent_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/worker/agents/{agent_id}", headers=WORKER_HEADERS)
    assert response.status_code == 200, response.text
    return dict(response.json())


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and re.match(SECRET_NAME_PATTERN, value["secret"]) is not None


async def test_keys_and_header_values_never_come_back_and_reach_only_the_worker(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_and_client
    key = "sk-or-" + secrets.token_hex(16)
    token = secrets.token_hex(16)
    authorization = f"Bearer {token}"

    created = await client.post("/api/agents", json=agent_body(key, authorization))
    assert created.status_code == 201, created.text
    agent = created.json()
    responses = [created]
    responses.append(await client.get("/api/agents"))
    responses.append(await client.get(f"/api/agents/{agent['id']}"))
    responses.append(await client.put(f"/api/agents/{agent['id']}/default"))
    responses.append(await client.get("/api/agents/default"))
    responses.append(await client.patch(f"/api/agents/{agent['id']}", json={"greeting": "Hi!"}))
    copy = await client.post(f"/api/agents/{agent['id']}/duplicate")
    responses.append(copy)
    assert all(r.status_code in (200, 201) for r in responses)
    leaks = [r.request.url.path for r in responses if key in r.text or token in r.text]
    assert leaks == []
    assert key not in await database_text(app) and token not in await database_text(app)

    # What is read instead: references to the secrets store, listed there by name only.
    api_key = agent["llm"][0]["options"]["api_key"]
    headers = agent["tools"][0]["headers"]
    assert is_reference(api_key) and is_reference(headers["Authorization"])
    assert is_reference(headers["X-Tenant"])
    listed = {s["name"] for s in (await client.get("/api/secrets")).json()["items"]}
    assert {api_key["secret"], headers["Authorization"]["secret"]} <= listed

    # The worker gets the values, for the agent and for its copy.
    for agent_id in (agent["id"], copy.json()["id"]):
        config = await worker_config(client, agent_id)
        assert config["llm"][0]["options"]["api_key"] == key
        assert config["tools"][0]["headers"] == {"Authorization": authorization, "X-Tenant": "acme"}

    # Saving the agent as it was read (what the console does) keeps the stored values.
    read = (await client.get(f"/api/agents/{agent['id']}")).json()
    saved = await client.patch(
        f"/api/agents/{agent['id']}",
        json={"llm": read["llm"], "tools": read["tools"], "name": "Bookings 2"},
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["llm"] == read["llm"] and saved.json()["tools"] == read["tools"]
    config = await worker_config(client, agent["id"])
    assert config["llm"][0]["options"]["api_key"] == key
    assert config["tools"][0]["headers"]["Authorization"] == authorization

    # Typing a new key replaces it for this agent only.
    new_key = "sk-or-" + secrets.token_hex(16)
    llm = {"provider": "openrouter", "options": {"api_key": new_key}}
    assert (await client.patch(f"/api/agents/{agent['id']}", json={"llm": llm})).status_code == 200
    assert (await worker_config(client, agent["id"]))["llm"][0]["options"]["api_key"] == new_key
    copied = await worker_config(client, copy.json()["id"])
    assert copied["llm"][0]["options"]["api_key"] == key
    assert new_key not in await database_text(app)


async def test_a_reference_names_a_stored_secret(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = app_and_client
    missing = await client.post(
        "/api/agents", json=agent_body({"secret": "ROUTER_KEY"}, "Bearer x")
    )
    assert missing.status_code == 422
    [error] = missing.json()["detail"]
    assert error["loc"] == ["body", "llm", 0, "options", "api_key"]
    assert "Secret ROUTER_KEY is not set" in error["msg"]

    not_a_key = await client.post("/api/agents", json=agent_body(12345, "Bearer x"))
    assert not_a_key.status_code == 422
    [error] = not_a_key.json()["detail"]
    assert 'options.api_key must be a string or {"secret": NAME}' in error["msg"]

    # A rejected agent does not echo the key it carried either.
    key = "sk-or-" + secrets.token_hex(16)
    rejected = agent_body("k", f"Bearer {key}")
    del rejected["tools"][0]["description"]
    echoed = await client.post("/api/agents", json=rejected)
    assert echoed.status_code == 422 and key not in echoed.text

    value = "sk-or-" + secrets.token_hex(16)
    assert (await client.put("/api/secrets/ROUTER_KEY", json={"value": value})).status_code == 200
    agent = await client.post("/api/agents", json=agent_body({"secret": "ROUTER_KEY"}, "Bearer x"))
    assert agent.status_code == 201, agent.text
    assert agent.json()["llm"][0]["options"]["api_key"] == {"secret": "ROUTER_KEY"}
    config = await worker_config(client, agent.json()["id"])
    assert config["llm"][0]["options"]["api_key"] == value

    # A secret deleted after the agent was saved: the worker is told which one is missing.
    assert (await client.delete("/api/secrets/ROUTER_KEY")).status_code == 204
    response = await client.get(f"/api/worker/agents/{agent.json()['id']}", headers=WORKER_HEADERS)
    assert response.status_code == 409
    assert "ROUTER_KEY, which is not set" in response.json()["detail"]


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "javascript:alert(1)"]
)
async def test_provider_urls_of_other_schemes_are_refused(
    app_and_client: tuple[FastAPI, httpx.AsyncClient], url: str
) -> None:
    _, client = app_and_client
    for role, provider in (("llm", "openai"), ("tts", "elevenlabs")):
        body = agent_body("k", "Bearer x", **{role: {"provider": provider, "options": {}}})
        body[role]["options"]["base_url"] = url
        response = await client.post("/api/agents", json=body)
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", role, 0, "options", "base_url"]
        assert "scheme must be" in error["msg"]
    webhook = agent_body("k", "Bearer x")
    webhook["tools"][0]["url"] = url
    assert (await client.post("/api/agents", json=webhook)).status_code == 422


async def test_websocket_urls_are_accepted_only_for_websocket_providers(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = app_and_client
    stt = {"provider": "deepgram", "options": {"base_url": "wss://dg.example/v1/listen"}}
    assert (await client.post("/api/agents", json=agent_body("k", "x", stt=stt))).status_code == 201
    llm = {"provider": "openai", "options": {"base_url": "wss://llm.example/v1"}}
    assert (await client.post("/api/agents", json=agent_body("k", "x", llm=llm))).status_code == 422


async def test_plaintext_saved_by_an_earlier_version_is_moved_at_start(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_and_client
    key = "sk-or-" + secrets.token_hex(16)
    token = secrets.token_hex(16)
    config = AgentConfig.model_validate(agent_body(key, f"Bearer {token}"))
    async with app.state.sessionmaker() as db:  # as earlier versions stored it
        row = Agent.model_validate(config.model_dump(mode="json"))
        db.add(row)
        await db.commit()
    assert key in await database_text(app)

    async with app.router.lifespan_context(app):  # the control plane starting
        pass
    assert key not in await database_text(app) and token not in await database_text(app)
    read = (await client.get(f"/api/agents/{row.id}")).json()
    assert is_reference(read["llm"][0]["options"]["api_key"]) and key not in str(read)
    worker = await worker_config(client, row.id)
    assert worker["llm"][0]["options"]["api_key"] == key
    assert worker["tools"][0]["headers"]["Authorization"] == f"Bearer {token}"

    async with app.router.lifespan_context(app):  # starting again changes nothing
        pass
    assert (await client.get(f"/api/agents/{row.id}")).json()["llm"] == read["llm"]
