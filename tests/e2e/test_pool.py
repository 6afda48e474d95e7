"""The worker pool on the real stack: 3 worker processes behind one livekit-server.

Each worker takes at most ``MAX_SESSIONS`` sessions; LiveKit spreads jobs by the load the
workers report, the control plane re-dispatches a job no worker took, SIGTERM drains a worker
without dropping its call, and SIGKILL fails the lost worker's call within a bounded time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from stimm.stack import LocalStack, ManagedProcess, StackOptions
from stimm.stack.postgres import drop_database, ensure_database
from testkit.audio import synthesize, transcribe
from testkit.caller import Caller, Listener
from tests.e2e.test_roundtrip import QUESTION, agent_body, wait_for_session

pytestmark = pytest.mark.e2e

MAX_SESSIONS = 4
WORKERS = 3
WORKER_TTL_S = 8
DISPATCH_TIMEOUT_S = 12
LOST_BOUND_S = 40
"""Heartbeat TTL + sweep interval + LiveKit dropping the dead agent, with a margin for a busy
2-core machine."""


def prewarmed(worker: ManagedProcess) -> bool:
    """Whether every session slot of ``worker`` has a job process ready."""
    return worker.log_tail(2000).count("process initialized") >= MAX_SESSIONS


@pytest.fixture(scope="module")
def pool_stack(run_dir: Path) -> Iterator[LocalStack]:
    db_name = f"stimm_e2e_pool_{os.getpid()}"
    database_url = ensure_database(db_name, fresh=True)
    with pytest.MonkeyPatch.context() as mp:
        # control plane: quick lost-worker detection and a short dispatch wait
        mp.setenv("STIMM_WORKER_TTL", str(WORKER_TTL_S))
        mp.setenv("STIMM_WORKER_SWEEP_INTERVAL", "1")
        mp.setenv("STIMM_DISPATCH_TIMEOUT", str(DISPATCH_TIMEOUT_S))
        s = LocalStack(
            StackOptions(
                run_dir=run_dir / "pool-stack",
                database_url=database_url,
                workers=WORKERS,
                worker_env={
                    "STIMM_WORKER_MAX_SESSIONS": str(MAX_SESSIONS),
                    # a prewarmed job process per slot: a cold one takes tens of seconds
                    # to load its models on a busy 2-core machine
                    "STIMM_WORKER_IDLE_PROCESSES": str(MAX_SESSIONS),
                    # sessions only: CPU of a shared test box and latency are unit-tested
                    "STIMM_WORKER_CPU_LIMIT": "0",
                    "STIMM_WORKER_LATENCY_SLO": "0",
                    "STIMM_DRAIN_TIMEOUT": "90",
                    "STIMM_WORKER_HEARTBEAT_INTERVAL": "1",
                    "STIMM_WORKER_STATUS_PORT": "0",
                    "STIMM_WORKER_STATUS_HOST": "127.0.0.1",
                    "STIMM_WORKER_ADVERTISE_HOST": "127.0.0.1",
                },
            )
        )
        s.start()
    try:
        for worker in s.workers:
            worker.wait_ready(partial(prewarmed, worker), timeout=180)
        yield s
    finally:
        s.stop()
        drop_database(db_name)


@pytest.fixture
async def http(pool_stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=pool_stack.control_plane_url, headers=pool_stack.api_headers, timeout=60
    ) as client:
        yield client


@pytest.fixture(scope="module")
def agent_ids() -> dict[str, str]:
    return {}


async def museum_agent(http: httpx.AsyncClient, llm_url: str, cache: dict[str, str]) -> str:
    if "museum" not in cache:
        resp = await http.post("/api/agents", json=agent_body(llm_url))
        assert resp.status_code == 201, resp.text
        cache["museum"] = resp.json()["id"]
    return cache["museum"]


async def live_workers(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    resp = await http.get("/api/workers")
    resp.raise_for_status()
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def wait_workers(
    http: httpx.AsyncClient, check: Any, timeout: float = 30.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        workers = await live_workers(http)
        if check(workers) or time.monotonic() > deadline:
            return workers
        await asyncio.sleep(0.5)


async def start_call(
    http: httpx.AsyncClient, agent_id: str, *, listen_only: bool = False
) -> tuple[dict[str, Any], Caller]:
    resp = await http.post("/api/sessions", json={"agent_id": agent_id})
    assert resp.status_code == 201, resp.text
    sess: dict[str, Any] = resp.json()
    caller = Listener() if listen_only else Caller()
    await caller.join(sess["livekit_url"], sess["token"])
    return sess, caller


def worker_process(stack: LocalStack, pid: int) -> ManagedProcess:
    return next(w for w in stack.workers if w.pid == pid)


async def test_twelve_sessions_fill_three_workers_and_a_full_pool_refuses_clearly(
    pool_stack: LocalStack, http: httpx.AsyncClient, fake_llm_url: str, agent_ids: dict[str, str]
) -> None:
    agent_id = await museum_agent(http, fake_llm_url, agent_ids)
    workers = await wait_workers(http, lambda ws: len(ws) == WORKERS)
    assert len(workers) == WORKERS, workers

    calls = await asyncio.gather(*(start_call(http, agent_id, listen_only=True) for _ in range(12)))
    try:
        greetings = await asyncio.gather(
            *(c.next_utterance(timeout=150, silence_s=3.0) for _, c in calls)
        )
        # every caller was greeted out loud; a few transcribed to be sure it is the greeting
        # (on a saturated machine a sentence can arrive cut, so one clean one is enough)
        assert all(len(g.pcm) > 0 for g in greetings)
        heard = [transcribe(g.pcm) for g in greetings[:3]]
        assert any("test agent" in h or "how can i help" in h for h in heard), heard

        # spread by load: each worker holds exactly its MAX_SESSIONS, none more
        workers = await wait_workers(
            http, lambda ws: sum(w["active_jobs"] for w in ws) == 12, timeout=10
        )
        per_worker = {w["worker_id"]: w["active_jobs"] for w in workers}
        assert sorted(per_worker.values()) == [MAX_SESSIONS] * WORKERS, per_worker
        assert all(w["full"] for w in workers), workers
        records = [(await http.get(f"/api/sessions/{s['session_id']}")).json() for s, _ in calls]
        on = Counter(r["worker_id"] for r in records)
        assert sorted(on.values()) == [MAX_SESSIONS] * WORKERS, on

        # every worker is at its threshold: the 13th gets a clear refusal, not a silent room
        started = time.monotonic()
        resp = await http.post("/api/sessions", json={"agent_id": agent_id})
        assert resp.status_code == 503, resp.text
        assert "no agent worker took the session" in resp.json()["detail"]
        assert time.monotonic() - started < DISPATCH_TIMEOUT_S + 5
        refused = (await http.get("/api/sessions", params={"status": "failed"})).json()["items"]
        assert any("no agent worker" in (r["failure_reason"] or "") for r in refused)
    finally:
        await asyncio.gather(*(c.leave() for _, c in calls))
    for sess, _ in calls:
        record = await wait_for_session(http, sess["session_id"], {"completed", "failed"}, 60)
        assert record["status"] == "completed", record


async def test_sigterm_drains_a_worker_without_dropping_its_call(
    pool_stack: LocalStack, http: httpx.AsyncClient, fake_llm_url: str, agent_ids: dict[str, str]
) -> None:
    agent_id = await museum_agent(http, fake_llm_url, agent_ids)
    await wait_workers(http, lambda ws: sum(w["active_jobs"] for w in ws) == 0)
    sess, caller = await start_call(http, agent_id)
    others: list[tuple[dict[str, Any], Caller]] = []
    try:
        await caller.next_utterance(timeout=90)  # greeted
        record = (await http.get(f"/api/sessions/{sess['session_id']}")).json()
        draining_id = record["worker_id"]
        worker = next(w for w in await live_workers(http) if w["worker_id"] == draining_id)
        proc = worker_process(pool_stack, worker["pid"])

        # what an orchestrator does: SIGTERM to the worker's main process only
        assert proc.proc is not None
        os.kill(proc.proc.pid, signal.SIGTERM)
        workers = await wait_workers(
            http, lambda ws: any(w["worker_id"] == draining_id and w["draining"] for w in ws)
        )
        assert any(w["worker_id"] == draining_id and w["draining"] for w in workers), workers
        async with httpx.AsyncClient() as probe:
            ready = await probe.get(f"{worker['status_url']}/ready")
        assert ready.status_code == 503 and "draining" in ready.text

        # new sessions go to the other workers
        for _ in range(2):
            others.append(await start_call(http, agent_id, listen_only=True))
        await asyncio.gather(*(c.next_utterance(timeout=90) for _, c in others))
        for other, _ in others:
            on = (await http.get(f"/api/sessions/{other['session_id']}")).json()["worker_id"]
            assert on != draining_id

        # the call on the draining worker goes on: the caller still gets answers
        await caller.say(synthesize(QUESTION))
        answer = transcribe((await caller.next_utterance(timeout=60)).pcm)
        assert "sunday afternoon" in answer, answer
        assert proc.alive()
    finally:
        await caller.leave()
        await asyncio.gather(*(c.leave() for _, c in others))

    # the worker exits 0 once its last call ended
    assert proc.proc is not None
    code = await asyncio.to_thread(proc.proc.wait, 60)
    assert code == 0, proc.log_tail(60)
    ids = [sess["session_id"], *(o["session_id"] for o, _ in others)]
    records = [await wait_for_session(http, i, {"completed", "failed"}, 60) for i in ids]
    assert [r["status"] for r in records] == ["completed"] * len(ids), records
    workers = await wait_workers(http, lambda ws: all(w["worker_id"] != draining_id for w in ws))
    assert all(w["worker_id"] != draining_id for w in workers)


async def test_sigkill_fails_the_lost_call_and_the_next_calls_succeed(
    pool_stack: LocalStack, http: httpx.AsyncClient, fake_llm_url: str, agent_ids: dict[str, str]
) -> None:
    agent_id = await museum_agent(http, fake_llm_url, agent_ids)
    alive = [w for w in pool_stack.workers if w.alive()]
    assert len(alive) >= 2, "the drain test leaves two workers"
    sess, caller = await start_call(http, agent_id)
    try:
        await caller.next_utterance(timeout=90)
        record = await wait_for_session(http, sess["session_id"], {"active"}, 10)
        lost_id = record["worker_id"]
        worker = next(w for w in await live_workers(http) if w["worker_id"] == lost_id)
        proc = worker_process(pool_stack, worker["pid"])
        killed_at = time.monotonic()
        proc.signal(signal.SIGKILL)  # the whole container: main and job processes

        record = await wait_for_session(
            http, sess["session_id"], {"completed", "failed"}, LOST_BOUND_S
        )
        assert record["status"] == "failed", record
        assert "worker lost" in record["failure_reason"], record
        assert time.monotonic() - killed_at < LOST_BOUND_S
    finally:
        await caller.leave()

    workers = await wait_workers(http, lambda ws: all(w["worker_id"] != lost_id for w in ws))
    assert [w["worker_id"] for w in workers if w["worker_id"] == lost_id] == []
    nxt = [await start_call(http, agent_id, listen_only=True) for _ in range(2)]
    try:
        greetings = await asyncio.gather(*(c.next_utterance(timeout=90) for _, c in nxt))
        assert all(len(g.pcm) > 0 for g in greetings)
    finally:
        await asyncio.gather(*(c.leave() for _, c in nxt))
    for s, _ in nxt:
        record = await wait_for_session(http, s["session_id"], {"completed", "failed"}, 60)
        assert record["status"] == "completed", record
        assert record["worker_id"] != lost_id
