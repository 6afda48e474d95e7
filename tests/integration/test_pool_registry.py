"""The Workers view and lost-worker sweep with real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from control_plane import crud
from control_plane.models import VoiceSession, utcnow
from control_plane.workers.registry import MemoryRegistry, RedisRegistry, WorkerRegistry
from control_plane.workers.sweeper import sweep_once
from stimm.schema import WorkerHeartbeat
from tests.integration.control_plane_env import (
    WORKER_HEADERS,
    app_client,
    make_settings,
)

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def app_and_client(
    database_url: str, redis_url: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with app_client(make_settings(database_url, redis_url=redis_url)) as pair:
        yield pair


def beat(worker_id: str, **kw: object) -> dict[str, object]:
    body: dict[str, object] = {
        "worker_id": worker_id,
        "load": 0.5,
        "threshold": 0.999,
        "max_sessions": 4,
        "active_jobs": 2,
        "sessions": [],
    }
    body.update(kw)
    return body


async def test_heartbeats_make_the_workers_view(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = app_and_client
    # an API key does not open the worker route; the worker token does
    refused = await client.post("/api/worker/heartbeat", json=beat("AW_a"))
    assert refused.status_code == 401
    for worker_id, draining in (("AW_a", False), ("AW_b", True)):
        resp = await client.post(
            "/api/worker/heartbeat",
            json=beat(worker_id, draining=draining),
            headers=WORKER_HEADERS,
        )
        assert resp.status_code == 204, resp.text
    bad = await client.post(
        "/api/worker/heartbeat", json=beat("AW_c", load=3), headers=WORKER_HEADERS
    )
    assert bad.status_code == 422

    view = (await client.get("/api/workers")).json()
    assert {w["worker_id"] for w in view["items"]} == {"AW_a", "AW_b"}
    assert view["sessions"] == 4
    assert view["capacity"] == 4  # the draining worker's slots do not count
    assert [w["full"] for w in view["items"]] == [False, True]

    gone = await client.delete("/api/worker/workers/AW_b", headers=WORKER_HEADERS)
    assert gone.status_code == 204
    view = (await client.get("/api/workers")).json()
    assert [w["worker_id"] for w in view["items"]] == ["AW_a"]


async def test_sessions_of_a_silent_worker_fail_but_not_while_its_agent_is_in_the_room(
    app_and_client: tuple[FastAPI, httpx.AsyncClient], redis_url: str
) -> None:
    app, client = app_and_client
    agent = await client.post(
        "/api/agents",
        json={
            "name": "Desk",
            "instructions": "Answer briefly.",
            "stt": {"provider": "local"},
            "llm": {"provider": "openai", "model": "gpt-4.1-mini"},
            "tts": {"provider": "local"},
        },
    )
    assert agent.status_code == 201, agent.text
    registry = RedisRegistry(redis_url, ttl_s=0.5)
    ids = {}
    async with app.state.sessionmaker() as db:
        for worker_id in ("AW_alive", "AW_dead", "AW_slow"):
            voice_session = await crud.create_session(
                db, agent_id=agent.json()["id"], channel="web", participant_identity="x"
            )
            voice_session.status, voice_session.worker_id = "active", worker_id
            voice_session.started_at = utcnow() - timedelta(seconds=30)
            db.add(voice_session)
            await db.commit()
            ids[worker_id] = voice_session.id
    await registry.put(WorkerHeartbeat.model_validate(beat("AW_dead")))
    await registry.put(WorkerHeartbeat.model_validate(beat("AW_slow")))
    await asyncio.sleep(0.7)  # both expire; AW_alive keeps beating
    await registry.put(WorkerHeartbeat.model_validate(beat("AW_alive")))

    slow_room = f"stimm-{ids['AW_slow']}"

    async def agent_in_room(room: str) -> bool:
        return room == slow_room  # LiveKit still has the slow worker's agent

    async with app.state.sessionmaker() as db:
        lost = await sweep_once(db, registry, ttl_s=0.5, agent_in_room=agent_in_room)
        assert [s.id for s in lost] == [ids["AW_dead"]]
        rows = {wid: await db.get(VoiceSession, sid) for wid, sid in ids.items()}
    await registry.aclose()
    assert rows["AW_dead"] is not None and rows["AW_dead"].status == "failed"
    assert "worker lost" in (rows["AW_dead"].failure_reason or "")
    assert rows["AW_alive"] is not None and rows["AW_alive"].status == "active"
    assert rows["AW_slow"] is not None and rows["AW_slow"].status == "active"


@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_a_session_request_wakes_on_the_heartbeat_that_reports_its_session(
    redis_url: str, kind: str
) -> None:
    # with Redis, the heartbeat reaches one replica and the request waits on another
    if kind == "redis":
        receiving: WorkerRegistry = RedisRegistry(redis_url, ttl_s=5)
        waiting: WorkerRegistry = RedisRegistry(redis_url, ttl_s=5)
    else:
        receiving = waiting = MemoryRegistry(ttl_s=5)
    try:
        # the first wait subscribes; nobody reports this session
        assert await waiting.reported("sess-unknown", 0.3) is None
        request = asyncio.create_task(waiting.reported("sess-1", 10.0))
        other = asyncio.create_task(waiting.reported("sess-2", 1.0))
        await asyncio.sleep(0.1)
        await receiving.put(WorkerHeartbeat.model_validate(beat("AW_y", sessions=["sess-1"])))
        # woken by the beat itself: without it the wait would give None after 10 s
        assert await asyncio.wait_for(request, 5) == "AW_y"
        assert await other is None, "a beat wakes only the requests of the sessions it lists"
    finally:
        await receiving.aclose()
        if waiting is not receiving:
            await waiting.aclose()
