"""Per-API-key limits: requests per minute, sessions started per minute, sessions open at once;
429 with Retry-After and a message naming the setting. Real PostgreSQL, real Redis."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from control_plane import crud
from control_plane.models import VoiceSession, utcnow
from tests.integration.control_plane_env import (
    app_client,
    make_settings,
    new_api_key,
    redis_server,
)

pytestmark = pytest.mark.integration

AGENT = {"name": "Quota", "instructions": "You answer.", "llm": {"provider": "openai"}}


def assert_too_many(resp: httpx.Response, setting: str) -> None:
    assert resp.status_code == 429, resp.text
    assert setting in resp.json()["detail"]
    assert int(resp.headers["Retry-After"]) >= 1


async def test_requests_beyond_the_per_minute_limit_get_429(database_url: str) -> None:
    settings = make_settings(database_url, requests_per_minute_per_key=5)
    async with app_client(settings) as (app, client):
        codes = [(await client.get("/api/agents")).status_code for _ in range(5)]
        assert codes == [200] * 5
        refused = await client.get("/api/agents")
        assert_too_many(refused, "STIMM_REQUESTS_PER_MINUTE_PER_KEY")
        assert int(refused.headers["Retry-After"]) <= 60
        # another key has its own budget
        _, other = await new_api_key(app, "other")
        ok = await client.get("/api/agents", headers={"Authorization": f"Bearer {other}"})
        assert ok.status_code == 200


async def test_replicas_count_one_key_together_through_redis(
    database_url: str, tmp_path: Path
) -> None:
    with redis_server(tmp_path) as redis_url:
        settings = make_settings(database_url, redis_url=redis_url, requests_per_minute_per_key=4)
        async with app_client(settings) as (app, first), app_client(settings) as (_, second):
            _, key = await new_api_key(app, "shared")
            headers = {"Authorization": f"Bearer {key}"}
            for replica in (first, second, first, second):
                assert (await replica.get("/api/agents", headers=headers)).status_code == 200
            assert_too_many(
                await first.get("/api/agents", headers=headers),
                "STIMM_REQUESTS_PER_MINUTE_PER_KEY",
            )


async def open_session(app: FastAPI, agent_id: str, key_id: str, *, age_s: float = 0) -> str:
    async with app.state.sessionmaker() as db:
        voice_session = await crud.create_session(
            db, agent_id=agent_id, channel="web", participant_identity="web-x", api_key_id=key_id
        )
        if age_s:
            voice_session.created_at = utcnow() - timedelta(seconds=age_s)
            db.add(voice_session)
            await db.commit()
        return voice_session.id


async def test_sessions_beyond_the_per_minute_limit_get_429(database_url: str) -> None:
    settings = make_settings(database_url, sessions_per_minute_per_key=2)
    async with app_client(settings) as (_, client):
        agent = (await client.post("/api/agents", json=AGENT)).json()
        for _ in range(2):  # LiveKit is a closed port: these fail to start, but were asked for
            resp = await client.post("/api/sessions", json={"agent_id": agent["id"]})
            assert resp.status_code == 503, resp.text
        refused = await client.post("/api/sessions", json={"agent_id": agent["id"]})
        assert_too_many(refused, "STIMM_SESSIONS_PER_MINUTE_PER_KEY")
        listed = (await client.get("/api/sessions", params={"agent_id": agent["id"]})).json()
        assert listed["count"] == 2  # the refused one left no record


async def test_sessions_beyond_the_concurrent_quota_get_429(database_url: str) -> None:
    settings = make_settings(database_url, max_concurrent_sessions_per_key=2)
    async with app_client(settings) as (app, client):
        key_id, key = await new_api_key(app, "busy")
        headers = {"Authorization": f"Bearer {key}"}
        agent = (await client.post("/api/agents", json=AGENT)).json()
        first = await open_session(app, agent["id"], key_id)
        await open_session(app, agent["id"], key_id)
        await open_session(app, agent["id"], key_id, age_s=settings.session_token_ttl_s + 60)

        body = {"agent_id": agent["id"]}
        refused = await client.post("/api/sessions", json=body, headers=headers)
        assert_too_many(refused, "STIMM_MAX_CONCURRENT_SESSIONS_PER_KEY")
        assert "has 2 sessions open" in refused.json()["detail"]
        # other keys are not held back by this one
        other = await client.post("/api/sessions", json=body)
        assert other.status_code == 503, other.text

        async with app.state.sessionmaker() as db:
            voice_session = await db.get(VoiceSession, first)
            assert voice_session is not None
            await crud.mark_session_failed(db, voice_session, "ended")
        allowed = await client.post("/api/sessions", json=body, headers=headers)
        assert allowed.status_code == 503, allowed.text  # past the quota; LiveKit is down
