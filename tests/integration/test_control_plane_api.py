"""The control plane's HTTP API against a real PostgreSQL (and SQLite for the embedded default).

LiveKit is pointed at a closed port here: the happy path with a real LiveKit server is in e2e.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from control_plane import crud
from control_plane.core.config import Settings
from control_plane.core.db import run_migrations
from control_plane.main import create_app
from control_plane.models import VoiceSession
from stimm.schema import WorkerAgentConfig
from tests.integration.control_plane_env import (
    WORKER_HEADERS,
    WORKER_TOKEN,
    agent_body,
    app_client,
    closed_port_url,
    make_settings,
    new_api_key,
)

pytestmark = pytest.mark.integration


# --- fixtures ---------------------------------------------------------------------------------


async def create_agent(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/agents", json=agent_body(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_session_row(app: FastAPI, agent_id: str) -> str:
    """A session in state "created", as POST /api/sessions leaves it once LiveKit accepted it."""
    async with app.state.sessionmaker() as db:
        voice_session: VoiceSession = await crud.create_session(
            db, agent_id=agent_id, channel="web", participant_identity="web-test"
        )
        return voice_session.id


def error_locations(response: httpx.Response) -> list[list[Any]]:
    return [error["loc"] for error in response.json()["detail"]]


# --- agents -----------------------------------------------------------------------------------


async def test_create_get_and_list_agents(client: httpx.AsyncClient) -> None:
    created = await create_agent(client)
    assert created["name"] == "Receptionist"
    # A single provider is stored as a one-element failover list.
    assert created["llm"] == [
        {"provider": "openai", "model": "gpt-4o-mini", "options": {"temperature": 0.3}}
    ]
    # Defaults come from AgentConfig.
    assert created["stt"] == [{"provider": "local", "model": None, "options": {}}]
    assert created["language"] == "en"
    assert created["created_at"].endswith(("Z", "+00:00"))

    fetched = await client.get(f"/api/agents/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created

    later = [await create_agent(client, name=f"Agent {i}") for i in range(3)]
    listing = await client.get("/api/agents", params={"limit": 500})
    assert listing.status_code == 200
    ids = [a["id"] for a in listing.json()["items"]]
    expected_newest_first = [a["id"] for a in reversed([created, *later])]
    assert [i for i in ids if i in expected_newest_first] == expected_newest_first
    assert listing.json()["count"] >= 4

    first_page = (await client.get("/api/agents", params={"limit": 1})).json()
    second_page = (await client.get("/api/agents", params={"limit": 1, "offset": 1})).json()
    assert [a["id"] for a in first_page["items"]] == [later[2]["id"]]
    assert [a["id"] for a in second_page["items"]] == [later[1]["id"]]


async def test_unknown_agent_is_404_with_message(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/agents/no-such-agent")
    assert response.status_code == 404
    assert response.json() == {"detail": "Agent no-such-agent not found"}


async def test_unknown_knowledge_base_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/agents", json=agent_body(knowledge_base_id="no-such-kb"))
    assert response.status_code == 422
    assert error_locations(response) == [["body", "knowledge_base_id"]]
    assert "no-such-kb" in response.json()["detail"][0]["msg"]
    agent = await create_agent(client)
    patched = await client.patch(
        f"/api/agents/{agent['id']}", json={"knowledge_base_id": "no-such-kb"}
    )
    assert patched.status_code == 422
    assert (await client.get(f"/api/agents/{agent['id']}")).json()["knowledge_base_id"] is None


async def test_missing_llm_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    body = agent_body()
    del body["llm"]
    response = await client.post("/api/agents", json=body)
    assert response.status_code == 422
    assert ["body", "llm"] in error_locations(response)


@pytest.mark.parametrize(
    ("llm", "location"),
    [
        ({"provider": ""}, ["body", "llm", 0, "provider"]),
        ({"model": "gpt-4o"}, ["body", "llm", 0, "provider"]),
        ({"provider": "openai", "temperature": 0.2}, ["body", "llm", 0, "temperature"]),
    ],
)
async def test_bad_provider_spec_is_422_with_its_location(
    client: httpx.AsyncClient, llm: dict[str, Any], location: list[str]
) -> None:
    response = await client.post("/api/agents", json=agent_body(llm=llm))
    assert response.status_code == 422
    assert error_locations(response) == [location]


async def test_patch_agent_validates_the_merged_config(client: httpx.AsyncClient) -> None:
    created = await create_agent(client)
    response = await client.patch(
        f"/api/agents/{created['id']}",
        json={"instructions": "Book appointments.", "tts": {"provider": "elevenlabs"}},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["instructions"] == "Book appointments."
    assert updated["tts"][0]["provider"] == "elevenlabs"
    assert updated["llm"] == created["llm"]
    assert updated["updated_at"] > created["updated_at"]
    assert (await client.get(f"/api/agents/{created['id']}")).json() == updated

    bad_name = await client.patch(f"/api/agents/{created['id']}", json={"name": ""})
    assert bad_name.status_code == 422
    assert error_locations(bad_name) == [["body", "name"]]
    bad_llm = await client.patch(f"/api/agents/{created['id']}", json={"llm": {"provider": ""}})
    assert bad_llm.status_code == 422
    assert error_locations(bad_llm) == [["body", "llm", 0, "provider"]]
    assert (await client.get(f"/api/agents/{created['id']}")).json() == updated

    missing = await client.patch("/api/agents/no-such-agent", json={"name": "x"})
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("role", "spec", "location"),
    [
        ("llm", {"provider": "no-such-llm"}, ["body", "llm", 0, "provider"]),
        ("stt", {"provider": "whisperx"}, ["body", "stt", 0, "provider"]),
        ("llm", {"provider": "openai", "model": "gpt-99"}, ["body", "llm", 0, "model"]),
        ("tts", {"provider": "elevenlabs", "model": "nope"}, ["body", "tts", 0, "model"]),
        ("llm", {"provider": "llamacpp"}, ["body", "llm", 0, "options", "base_url"]),
        (
            "llm",
            {"provider": "openai", "options": {"temperature": "hot"}},
            ["body", "llm", 0, "options", "temperature"],
        ),
    ],
)
async def test_providers_outside_the_catalog_are_422_naming_the_field(
    client: httpx.AsyncClient, role: str, spec: dict[str, Any], location: list[Any]
) -> None:
    response = await client.post("/api/agents", json=agent_body() | {role: spec})
    assert response.status_code == 422, response.text
    assert error_locations(response) == [location]
    assert response.json()["detail"][0]["msg"]

    agent = await create_agent(client)
    patched = await client.patch(f"/api/agents/{agent['id']}", json={role: spec})
    assert patched.status_code == 422
    assert error_locations(patched) == [location]


async def test_failover_list_errors_point_at_the_bad_entry(client: httpx.AsyncClient) -> None:
    llm = [{"provider": "groq"}, {"provider": "mistral", "model": "gpt-4o"}]
    response = await client.post("/api/agents", json=agent_body(llm=llm))
    assert response.status_code == 422
    assert error_locations(response) == [["body", "llm", 1, "model"]]


async def test_own_openai_compatible_server_accepts_any_model(client: httpx.AsyncClient) -> None:
    llm = {"provider": "openai", "model": "my-finetune", "options": {"base_url": "http://h/v1"}}
    created = await create_agent(client, llm=llm)
    assert created["llm"][0]["model"] == "my-finetune"
    local = await create_agent(
        client, llm={"provider": "llamacpp", "options": {"base_url": "http://gpu:8080/v1"}}
    )
    assert local["llm"][0]["provider"] == "llamacpp"


async def test_delete_duplicate_and_default(app: FastAPI, client: httpx.AsyncClient) -> None:
    default = (await client.get("/api/agents/default")).json()
    assert default["is_default"] is True  # the first agent of this database

    original = await create_agent(client, name="Front desk")
    assert original["is_default"] is False
    copy = await client.post(f"/api/agents/{original['id']}/duplicate")
    assert copy.status_code == 201
    assert copy.json()["id"] != original["id"]
    assert copy.json()["name"] == "Front desk (copy)"
    assert copy.json()["llm"] == original["llm"]
    named = await client.post(f"/api/agents/{original['id']}/duplicate", json={"name": "Night"})
    assert named.json()["name"] == "Night"

    made = await client.put(f"/api/agents/{copy.json()['id']}/default")
    assert made.status_code == 200 and made.json()["is_default"] is True
    assert (await client.get("/api/agents/default")).json()["id"] == copy.json()["id"]
    assert (await client.get(f"/api/agents/{default['id']}")).json()["is_default"] is False

    deleted = await client.delete(f"/api/agents/{original['id']}")
    assert deleted.status_code == 204
    assert (await client.get(f"/api/agents/{original['id']}")).status_code == 404
    assert (await client.delete(f"/api/agents/{original['id']}")).status_code == 404

    in_use = await create_agent(client)
    await create_session_row(app, in_use["id"])
    refused = await client.delete(f"/api/agents/{in_use['id']}")
    assert refused.status_code == 409
    assert "session" in refused.json()["detail"]
    assert (await client.get(f"/api/agents/{in_use['id']}")).status_code == 200


# --- sessions ---------------------------------------------------------------------------------


async def test_session_for_unknown_agent_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/sessions", json={"agent_id": "no-such-agent"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Agent no-such-agent not found"}


async def test_session_when_livekit_is_unreachable_is_503_and_recorded(
    client: httpx.AsyncClient,
) -> None:
    agent = await create_agent(client)
    response = await client.post("/api/sessions", json={"agent_id": agent["id"]})
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "LiveKit" in detail and "unreachable" in detail
    assert response.headers["retry-after"]

    listing = (await client.get("/api/sessions", params={"agent_id": agent["id"]})).json()
    assert listing["count"] == 1
    failed = listing["items"][0]
    assert failed["status"] == "failed"
    assert "unreachable" in failed["failure_reason"]
    assert failed["room"] == f"stimm-{failed['id']}"


async def test_list_sessions_newest_first_filtered_by_agent(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    agent = await create_agent(client)
    other = await create_agent(client)
    first = await create_session_row(app, agent["id"])
    second = await create_session_row(app, agent["id"])
    await create_session_row(app, other["id"])

    listing = (await client.get("/api/sessions", params={"agent_id": agent["id"]})).json()
    assert [s["id"] for s in listing["items"]] == [second, first]
    assert listing["count"] == 2
    assert {s["agent_id"] for s in listing["items"]} == {agent["id"]}


async def test_sessions_filter_by_channel_status_and_time(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    agent = await create_agent(client)
    web = await create_session_row(app, agent["id"])
    async with app.state.sessionmaker() as db:
        phone = await crud.create_session(
            db, agent_id=agent["id"], channel="phone", participant_identity="sip-1"
        )
        row = await crud.get_session(db, web)
        assert row is not None
        await crud.mark_session_failed(db, row, "caller hung up before the agent joined")
    mine = {"agent_id": agent["id"]}

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/api/sessions", params={**mine, **params})
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["items"]]

    assert await ids(channel="phone") == [phone.id]
    assert await ids(channel="web") == [web]
    assert await ids(status="failed") == [web]
    assert await ids(status="created") == [phone.id]
    created_at = phone.created_at.isoformat()
    assert await ids(since=created_at) == [phone.id]
    assert await ids(until=created_at) == [web]
    assert await ids(since="2000-01-01T00:00:00Z", until="2000-01-02T00:00:00Z") == []
    failed = (await client.get(f"/api/sessions/{web}")).json()
    assert failed["failure_reason"] == "caller hung up before the agent joined"

    bad = await client.get("/api/sessions", params={"channel": "fax"})
    assert bad.status_code == 422
    assert error_locations(bad) == [["query", "channel"]]


async def test_unknown_session_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/sessions/no-such-session")
    assert response.status_code == 404
    assert response.json() == {"detail": "Session no-such-session not found"}


# --- worker -----------------------------------------------------------------------------------


WORKER_CALLS = [
    ("GET", "/api/worker/agents/any", None),
    ("POST", "/api/worker/sessions/any/events", {"status": "active"}),
    ("POST", "/api/worker/sessions/any/turns", {"role": "user", "text": "hi"}),
    ("POST", "/api/worker/sessions/any/claim", {"job_id": "AJ_1"}),
]


@pytest.mark.parametrize(("method", "path", "body"), WORKER_CALLS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": f"Basic {WORKER_TOKEN}"},
    ],
    ids=["no-token", "wrong-token", "wrong-scheme"],
)
async def test_worker_endpoints_require_the_worker_token(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
) -> None:
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_worker_reads_the_agent_config(client: httpx.AsyncClient) -> None:
    agent = await create_agent(client, voice="joe")
    response = await client.get(f"/api/worker/agents/{agent['id']}", headers=WORKER_HEADERS)
    assert response.status_code == 200
    body = response.json()
    config = WorkerAgentConfig.model_validate(body)
    assert config.id == agent["id"]
    assert config.voice == "joe"
    assert config.llm[0].options == {"temperature": 0.3}

    missing = await client.get("/api/worker/agents/no-such-agent", headers=WORKER_HEADERS)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Agent no-such-agent not found"}


async def test_turns_come_back_in_the_order_posted(app: FastAPI, client: httpx.AsyncClient) -> None:
    agent = await create_agent(client)
    session_id = await create_session_row(app, agent["id"])
    posted: list[dict[str, Any]] = [
        {"role": "assistant", "text": "Hello, how can I help?"},
        {
            "role": "user",
            "text": "I'd like to book a cleaning.",
            "started_at": "2026-01-05T10:00:00Z",
            "ended_at": "2026-01-05T10:00:02.500000Z",
            "metrics": {"end_of_turn_delay": 0.4, "transcription_delay": 0.2},
        },
        {
            "role": "assistant",
            "text": "Sure, which day suits you?",
            "interrupted": True,
            "metrics": {"llm_ttft": 0.31, "tts_ttfb": 0.12, "e2e_latency": 0.9},
        },
    ]
    for expected_seq, turn in enumerate(posted, start=1):
        response = await client.post(
            f"/api/worker/sessions/{session_id}/turns", json=turn, headers=WORKER_HEADERS
        )
        assert response.status_code == 201, response.text
        assert response.json()["seq"] == expected_seq

    session = (await client.get(f"/api/sessions/{session_id}")).json()
    turns = session["turns"]
    assert [t["seq"] for t in turns] == [1, 2, 3]
    assert [(t["role"], t["text"]) for t in turns] == [(t["role"], t["text"]) for t in posted]
    assert [t["interrupted"] for t in turns] == [False, False, True]
    assert turns[1]["metrics"]["end_of_turn_delay"] == 0.4
    assert turns[1]["metrics"]["llm_ttft"] is None
    assert turns[2]["metrics"]["e2e_latency"] == 0.9
    assert turns[1]["ended_at"].startswith("2026-01-05T10:00:02.5")

    missing = await client.post(
        "/api/worker/sessions/no-such-session/turns",
        json={"role": "user", "text": "hi"},
        headers=WORKER_HEADERS,
    )
    assert missing.status_code == 404


async def test_events_move_the_session_through_its_lifecycle(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    agent = await create_agent(client)
    session_id = await create_session_row(app, agent["id"])
    events = f"/api/worker/sessions/{session_id}/events"

    before = (await client.get(f"/api/sessions/{session_id}")).json()
    assert (before["status"], before["started_at"], before["ended_at"]) == ("created", None, None)

    active = await client.post(events, json={"status": "active"}, headers=WORKER_HEADERS)
    assert active.status_code == 200
    assert active.json()["status"] == "active"
    assert active.json()["started_at"] is not None

    done = await client.post(events, json={"status": "completed"}, headers=WORKER_HEADERS)
    assert done.status_code == 200
    after = (await client.get(f"/api/sessions/{session_id}")).json()
    assert after["status"] == "completed"
    assert after["ended_at"] >= after["started_at"]
    assert after["failure_reason"] is None

    again = await client.post(events, json={"status": "completed"}, headers=WORKER_HEADERS)
    assert again.status_code == 200
    reopened = await client.post(events, json={"status": "active"}, headers=WORKER_HEADERS)
    assert reopened.status_code == 409
    assert "completed" in reopened.json()["detail"]

    failing_id = await create_session_row(app, agent["id"])
    failed = await client.post(
        f"/api/worker/sessions/{failing_id}/events",
        json={"status": "failed", "reason": "LLM provider returned 401"},
        headers=WORKER_HEADERS,
    )
    assert failed.status_code == 200
    failed_session = (await client.get(f"/api/sessions/{failing_id}")).json()
    assert failed_session["status"] == "failed"
    assert failed_session["failure_reason"] == "LLM provider returned 401"
    assert failed_session["ended_at"] is not None

    bad = await client.post(events, json={"status": "paused"}, headers=WORKER_HEADERS)
    assert bad.status_code == 422
    assert error_locations(bad) == [["body", "status"]]
    missing = await client.post(
        "/api/worker/sessions/no-such-session/events",
        json={"status": "active"},
        headers=WORKER_HEADERS,
    )
    assert missing.status_code == 404


async def test_only_the_first_job_to_claim_a_session_answers_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A dispatch withdrawn as unassigned may still have been taken: the second agent that
    turns up for the session is told to leave, so the caller hears one greeting."""
    agent = await create_agent(client)
    session_id = await create_session_row(app, agent["id"])
    claim = f"/api/worker/sessions/{session_id}/claim"

    first, second = await asyncio.gather(
        client.post(
            claim, json={"job_id": "AJ_first", "worker_id": "AW_a"}, headers=WORKER_HEADERS
        ),
        client.post(
            claim, json={"job_id": "AJ_second", "worker_id": "AW_b"}, headers=WORKER_HEADERS
        ),
    )
    codes = sorted([first.status_code, second.status_code])
    assert codes == [200, 409], (first.text, second.text)
    winner, loser = (first, second) if first.status_code == 200 else (second, first)
    winner_job = winner.json()["job_id"]
    assert f"already answered by job {winner_job}" in loser.json()["detail"]

    record = (await client.get(f"/api/sessions/{session_id}")).json()
    assert record["job_id"] == winner_job
    assert record["worker_id"] == ("AW_a" if winner_job == "AJ_first" else "AW_b")
    again = await client.post(claim, json={"job_id": winner_job}, headers=WORKER_HEADERS)
    assert again.status_code == 200  # the same job asking again (a retry) keeps it

    # dispatched again (the first dispatch looked unassigned): its job wins over the job of
    # the withdrawn dispatch, even one that claimed first
    async with app.state.sessionmaker() as db:
        voice_session = await crud.get_session(db, session_id)
        assert voice_session is not None
        await crud.set_session_dispatch(db, voice_session, "second-dispatch")
    stale = await client.post(
        claim, json={"job_id": winner_job, "dispatch": "first-dispatch"}, headers=WORKER_HEADERS
    )
    assert stale.status_code == 409
    assert "dispatched again" in stale.json()["detail"]
    current = await client.post(
        claim, json={"job_id": "AJ_third", "dispatch": "second-dispatch"}, headers=WORKER_HEADERS
    )
    assert current.status_code == 200, current.text
    assert current.json()["job_id"] == "AJ_third"

    # a job that arrives after the session gave up (no worker in time) must not answer it
    late_id = await create_session_row(app, agent["id"])
    await client.post(
        f"/api/worker/sessions/{late_id}/events",
        json={"status": "failed", "reason": "no agent worker took the session"},
        headers=WORKER_HEADERS,
    )
    late = await client.post(
        f"/api/worker/sessions/{late_id}/claim", json={"job_id": "AJ_late"}, headers=WORKER_HEADERS
    )
    assert late.status_code == 409
    assert late.json()["detail"] == f"Session {late_id} is failed; no job may answer it"

    missing = await client.post(
        "/api/worker/sessions/no-such-session/claim",
        json={"job_id": "AJ_x"},
        headers=WORKER_HEADERS,
    )
    assert missing.status_code == 404
    empty = await client.post(claim, json={"job_id": ""}, headers=WORKER_HEADERS)
    assert empty.status_code == 422
    assert error_locations(empty) == [["body", "job_id"]]


# --- health and schema ------------------------------------------------------------------------


async def test_health_reports_each_dependency_without_a_key(database_url: str) -> None:
    async with app_client(make_settings(database_url), authenticated=False) as (_, c):
        response = await c.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["redis"] == "not configured"
    # LiveKit is pointed at a closed port in these tests: reported, but not fatal.
    assert body["livekit"].startswith("error: ")
    assert body["status"] == "degraded"


async def test_health_is_503_when_the_database_is_down() -> None:
    port = closed_port_url().rsplit(":", 1)[1]
    app = create_app(make_settings(f"postgresql+asyncpg://stimm:stimm@127.0.0.1:{port}/nowhere"))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://control-plane"
        ) as c:
            response = await c.get("/health")
    finally:
        await app.state.engine.dispose()
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["database"].startswith("error: ")


async def test_migration_matches_the_models(app: FastAPI) -> None:
    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection)
        return list(compare_metadata(context, SQLModel.metadata))

    engine: AsyncEngine = app.state.engine
    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_sqlite_default_database_is_migrated_and_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STIMM_DATABASE_URL", raising=False)
    settings = Settings(dev=True, livekit_url=closed_port_url())
    assert settings.database_url == "sqlite+aiosqlite:///.stimm/stimm.db"

    await asyncio.to_thread(run_migrations, settings.database_url)
    await asyncio.to_thread(run_migrations, settings.database_url)  # a second run is a no-op
    assert (tmp_path / ".stimm" / "stimm.db").is_file()

    app = create_app(settings)
    headers = {"Authorization": f"Bearer {settings.worker_token.get_secret_value()}"}
    _, key = await new_api_key(app)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://control-plane",
            headers={"Authorization": f"Bearer {key}"},
        ) as c:
            assert (await c.get("/health")).json()["database"] == "ok"
            agent = await create_agent(c)
            assert (await c.get(f"/api/agents/{agent['id']}")).json() == agent
            session_id = await create_session_row(app, agent["id"])
            claim = f"/api/worker/sessions/{session_id}/claim"
            claims = [
                (await c.post(claim, json={"job_id": job}, headers=headers)).status_code
                for job in ("AJ_first", "AJ_second")
            ]
            for text in ("first", "second"):
                response = await c.post(
                    f"/api/worker/sessions/{session_id}/turns",
                    json={"role": "user", "text": text},
                    headers=headers,
                )
                assert response.status_code == 201
            active = await c.post(
                f"/api/worker/sessions/{session_id}/events",
                json={"status": "active"},
                headers=headers,
            )
            session = (await c.get(f"/api/sessions/{session_id}")).json()
    finally:
        await app.state.engine.dispose()
    assert claims == [200, 409]  # one job answers a session on SQLite too (`stimm dev`)
    assert active.status_code == 200
    assert [t["text"] for t in session["turns"]] == ["first", "second"]
    assert session["started_at"].endswith(("Z", "+00:00"))


async def test_sqlite_database_is_readable_by_its_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.umask(0o022)  # the usual umask: new files world-readable
    data = tmp_path / "data"
    settings = make_settings(f"sqlite+aiosqlite:///{data / 'stimm.db'}")
    await asyncio.to_thread(run_migrations, settings.database_url)
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://control-plane"
        ) as c:
            assert (await c.get("/health")).json()["database"] == "ok"
    finally:
        await app.state.engine.dispose()
    files = sorted(p.name for p in data.iterdir() if p.is_file())
    assert "stimm.db" in files
    for name in files:
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(data.stat().st_mode) == 0o700

    # a database created before this rule is tightened at the next start
    (data / "stimm.db").chmod(0o644)
    create_app(settings)
    assert stat.S_IMODE((data / "stimm.db").stat().st_mode) == 0o600
