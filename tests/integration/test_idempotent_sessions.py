"""``POST /api/sessions`` with an ``Idempotency-Key``: a client retrying on another
control-plane replica (its first one died mid-request) gets the session it already started,
never a second one. Two replicas in-process on one PostgreSQL database and one Redis, a real
livekit-server; the worker side is the real worker route, a heartbeat listing the sessions
it took (what a worker sends the moment it accepts a job)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlmodel import col, select

from control_plane import crud
from control_plane.models import VoiceSession
from control_plane.workers.config import PoolSettings
from stimm.stack import LocalStack, StackOptions
from tests.integration.control_plane_env import (
    WORKER_HEADERS,
    agent_body,
    app_client,
    make_settings,
    new_api_key,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def livekit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Redis and one real livekit-server: no control plane process, no worker."""
    stack = LocalStack(
        StackOptions(run_dir=tmp_path_factory.mktemp("lk"), control_planes=0, workers=0)
    )
    with stack:
        yield stack


class Replicas:
    """Two control planes on one database and Redis, and a worker that takes what it is told."""

    def __init__(self, first: httpx.AsyncClient, second: httpx.AsyncClient, app: FastAPI) -> None:
        self.first, self.second, self.app = first, second, app
        self.answering = True
        self.headers: dict[str, str] = {}
        self.api_key_id = ""
        self.agent_id = ""

    async def take_dispatched_sessions(self) -> None:
        """Heartbeat every created session that has a dispatch, as a worker taking its job."""
        while True:
            await asyncio.sleep(0.1)
            if not self.answering:
                continue
            async with self.app.state.sessionmaker() as db:
                rows = await db.exec(
                    select(VoiceSession.id).where(
                        col(VoiceSession.status) == "created",
                        col(VoiceSession.dispatch_token).is_not(None),
                    )
                )
                taken = list(rows.all())
            await self.first.post(
                "/api/worker/heartbeat",
                json={
                    "worker_id": "AW_test",
                    "load": 0.1,
                    "threshold": 0.999,
                    "max_sessions": 100,
                    "active_jobs": len(taken),
                    "sessions": taken,
                },
                headers=WORKER_HEADERS,
            )

    async def start(
        self, client: httpx.AsyncClient, key: str | None, **headers: str
    ) -> httpx.Response:
        return await client.post(
            "/api/sessions",
            json={"agent_id": self.agent_id},
            headers={**self.headers, **headers, **({"Idempotency-Key": key} if key else {})},
        )

    async def sessions_with(self, key: str) -> list[VoiceSession]:
        async with self.app.state.sessionmaker() as db:
            rows = await db.exec(select(VoiceSession).where(VoiceSession.idempotency_key == key))
            return list(rows.all())


@pytest_asyncio.fixture(scope="module")
async def replicas(database_url: str, livekit: LocalStack) -> AsyncIterator[Replicas]:
    o = livekit.options
    settings = make_settings(
        database_url,
        livekit_url=livekit.livekit_url,
        livekit_api_key=o.api_key,
        livekit_api_secret=o.api_secret,
        redis_url=f"redis://127.0.0.1:{o.redis_port}/0",
        pool=PoolSettings(dispatch_timeout_s=1.5, dispatch_attempt_s=0.5),
    )
    async with app_client(settings) as (app, first), app_client(settings) as (_, second):
        r = Replicas(first, second, app)
        r.api_key_id, key = await new_api_key(app, "idempotent")
        r.headers = {"Authorization": f"Bearer {key}"}
        agent = await first.post("/api/agents", json=agent_body("Idempotent"), headers=r.headers)
        assert agent.status_code == 201, agent.text
        r.agent_id = agent.json()["id"]
        worker = asyncio.create_task(r.take_dispatched_sessions())
        try:
            yield r
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker


async def test_a_retry_on_the_other_replica_gets_the_same_session(replicas: Replicas) -> None:
    first = await replicas.start(replicas.first, "order-1")
    assert first.status_code == 201, first.text
    retried = await replicas.start(replicas.second, "order-1")
    assert retried.status_code == 200, retried.text
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["session_id"] == first.json()["session_id"]
    assert retried.json()["room"] == first.json()["room"]
    assert len(await replicas.sessions_with("order-1")) == 1
    # without the key, or with another, a request starts another session
    other = await replicas.start(replicas.second, "order-2")
    assert other.status_code == 201 and other.json()["session_id"] != first.json()["session_id"]


async def test_two_requests_at_once_with_one_key_make_one_session(replicas: Replicas) -> None:
    responses = await asyncio.gather(
        replicas.start(replicas.first, "burst-1"), replicas.start(replicas.second, "burst-1")
    )
    assert sorted(r.status_code for r in responses) == [200, 201], [r.text for r in responses]
    assert len({r.json()["session_id"] for r in responses}) == 1
    assert len(await replicas.sessions_with("burst-1")) == 1


async def test_a_session_its_replica_left_undispatched_is_dispatched_by_the_retry(
    replicas: Replicas,
) -> None:
    # what a replica killed between recording the session and dispatching it leaves behind
    async with replicas.app.state.sessionmaker() as db:
        orphan = await crud.create_session(
            db,
            agent_id=replicas.agent_id,
            channel="web",
            participant_identity="web-orphan",
            api_key_id=replicas.api_key_id,
            idempotency_key="orphan-1",
        )
    assert orphan.dispatch_token is None
    retried = await replicas.start(replicas.second, "orphan-1")
    assert retried.status_code == 200, retried.text
    assert retried.json()["session_id"] == orphan.id
    async with replicas.app.state.sessionmaker() as db:
        again = await db.get(VoiceSession, orphan.id)
        assert again is not None and again.dispatch_token is not None  # dispatched this time


async def test_a_key_whose_session_failed_to_start_starts_a_new_one(replicas: Replicas) -> None:
    replicas.answering = False
    try:
        refused = await replicas.start(replicas.first, "retry-me")
    finally:
        replicas.answering = True
    assert refused.status_code == 503, refused.text
    retried = await replicas.start(replicas.second, "retry-me")
    assert retried.status_code == 201, retried.text
    [held] = await replicas.sessions_with("retry-me")
    assert held.id == retried.json()["session_id"] and held.status == "created"


async def test_a_key_whose_session_ended_is_refused(replicas: Replicas) -> None:
    started = await replicas.start(replicas.first, "done-1")
    assert started.status_code == 201, started.text
    async with replicas.app.state.sessionmaker() as db:
        row = await db.get(VoiceSession, started.json()["session_id"])
        assert row is not None
        row.status = "completed"
        db.add(row)
        await db.commit()
    again = await replicas.start(replicas.second, "done-1")
    assert again.status_code == 409
    assert "completed" in again.json()["detail"]


async def test_keys_are_per_api_key(replicas: Replicas) -> None:
    mine = await replicas.start(replicas.first, "shared-name")
    _, other_key = await new_api_key(replicas.app, "another client")
    theirs = await replicas.start(
        replicas.first, "shared-name", Authorization=f"Bearer {other_key}"
    )
    assert mine.status_code == theirs.status_code == 201, theirs.text
    assert mine.json()["session_id"] != theirs.json()["session_id"]


async def test_a_key_reused_for_another_agent_is_refused(replicas: Replicas) -> None:
    started = await replicas.start(replicas.first, "agent-bound")
    assert started.status_code == 201, started.text
    other = await replicas.first.post(
        "/api/agents", json=agent_body("Another"), headers=replicas.headers
    )
    resp = await replicas.second.post(
        "/api/sessions",
        json={"agent_id": other.json()["id"]},
        headers={**replicas.headers, "Idempotency-Key": "agent-bound"},
    )
    assert resp.status_code == 409 and "another agent" in resp.json()["detail"]
