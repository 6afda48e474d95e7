"""The control plane when its database goes away (through a real toxiproxy) and when the worker
posts the same turn twice (a retry after a timeout)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from control_plane import crud
from control_plane.models import VoiceSession
from stimm.stack.toxiproxy import Toxiproxy, start_toxiproxy
from tests.integration.control_plane_env import (
    DATABASE_URL,
    WORKER_HEADERS,
    app_client,
    fresh_database,
    make_settings,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Toxiproxy]:
    proc, client = start_toxiproxy(tmp_path_factory.mktemp("toxiproxy"))
    yield client
    client.close()
    proc.stop()


@pytest_asyncio.fixture(scope="module")
async def app_and_client(
    toxiproxy: Toxiproxy,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app whose every database connection goes through the ``postgres`` proxy."""
    async with fresh_database(DATABASE_URL) as url:
        parsed = make_url(url)
        port = toxiproxy.create("postgres", parsed.port or 5432)
        proxied = parsed.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        async with app_client(make_settings(proxied)) as pair:
            yield pair


async def new_session(app: FastAPI, client: httpx.AsyncClient) -> str:
    agent = await client.post(
        "/api/agents",
        json={
            "name": "Receptionist",
            "instructions": "You answer the phone.",
            "llm": {"provider": "openai", "model": "gpt-4o-mini"},
        },
    )
    assert agent.status_code == 201, agent.text
    async with app.state.sessionmaker() as db:
        voice_session: VoiceSession = await crud.create_session(
            db, agent_id=agent.json()["id"], channel="web", participant_identity="web-test"
        )
        return voice_session.id


async def test_retried_turn_is_stored_once(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_and_client
    session_id = await new_session(app, client)
    turns = f"/api/worker/sessions/{session_id}/turns"
    hello = {"role": "assistant", "text": "Hello, how can I help?", "key": "job-1:1"}
    question = {"role": "user", "text": "When are you open?", "key": "job-1:2"}

    first = await client.post(turns, json=hello, headers=WORKER_HEADERS)
    assert first.status_code == 201, first.text
    again = await client.post(turns, json=hello, headers=WORKER_HEADERS)
    assert again.status_code == 200, again.text
    assert again.json()["seq"] == first.json()["seq"] == 1
    # a retry that races the post it repeats is stored once too
    raced = await asyncio.gather(
        *(client.post(turns, json=question, headers=WORKER_HEADERS) for _ in range(3))
    )
    assert sorted(r.status_code for r in raced) == [200, 200, 201], [r.text for r in raced]
    # turns without a key (older workers) are appended as before
    keyless = await client.post(turns, json={"role": "user", "text": "Hi"}, headers=WORKER_HEADERS)
    assert keyless.status_code == 201

    record = (await client.get(f"/api/sessions/{session_id}")).json()
    assert [(t["seq"], t["text"]) for t in record["turns"]] == [
        (1, "Hello, how can I help?"),
        (2, "When are you open?"),
        (3, "Hi"),
    ]


async def test_unreachable_database_is_a_fast_503_and_heals(
    app_and_client: tuple[FastAPI, httpx.AsyncClient], toxiproxy: Toxiproxy
) -> None:
    app, client = app_and_client
    session_id = await new_session(app, client)
    turns = f"/api/worker/sessions/{session_id}/turns"
    assert (await client.get("/api/agents")).status_code == 200  # a pooled connection exists

    with toxiproxy.down("postgres"):
        for path in ("/api/agents", f"/api/sessions/{session_id}"):
            started = time.monotonic()
            resp = await client.get(path)
            assert resp.status_code == 503, resp.text
            assert resp.json()["detail"] == "The database is unreachable; try again in a moment."
            assert time.monotonic() - started < 6.0
        lost = await client.post(turns, json={"role": "user", "text": "Hi"}, headers=WORKER_HEADERS)
        assert lost.status_code == 503, lost.text
        assert lost.headers["retry-after"] == "5"

    # the pool replaces the connections the outage broke: the next requests succeed
    assert (await client.get("/api/agents")).status_code == 200
    stored = await client.post(turns, json={"role": "user", "text": "Hi"}, headers=WORKER_HEADERS)
    assert stored.status_code == 201, stored.text
    record = (await client.get(f"/api/sessions/{session_id}")).json()
    assert [t["text"] for t in record["turns"]] == ["Hi"]
