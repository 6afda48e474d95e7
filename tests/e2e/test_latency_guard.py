"""The latency guard on a live worker: a worker whose calls turn slow stops taking new ones.

The pool tests run with sessions as the only pressure; here one worker keeps its latency guard
on with an SLO its offline providers cannot meet, so a single answered turn marks it full.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stimm.stack import LocalStack, StackOptions
from stimm.stack.postgres import drop_database, ensure_database
from testkit.audio import synthesize, transcribe
from tests.e2e.test_pool import live_workers, museum_agent, start_call, wait_workers
from tests.e2e.test_roundtrip import QUESTION, wait_for_session

pytestmark = pytest.mark.e2e

SLO_S = 0.4
"""Below what end of speech → first audio takes with Whisper and Piper (well over 1 s)."""
DISPATCH_TIMEOUT_S = 8


@pytest.fixture(scope="module")
def guarded_stack(run_dir: Path) -> Iterator[LocalStack]:
    db_name = f"stimm_e2e_guard_{os.getpid()}"
    database_url = ensure_database(db_name, fresh=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STIMM_DISPATCH_TIMEOUT", str(DISPATCH_TIMEOUT_S))
        s = LocalStack(
            StackOptions(
                run_dir=run_dir / "guard-stack",
                database_url=database_url,
                workers=1,
                worker_env={
                    "STIMM_WORKER_LATENCY_SLO": str(SLO_S),
                    "STIMM_WORKER_MAX_SESSIONS": "4",
                    "STIMM_WORKER_IDLE_PROCESSES": "2",
                    "STIMM_WORKER_HEARTBEAT_INTERVAL": "1",
                },
            )
        )
        s.start()
    try:
        yield s
    finally:
        s.stop()
        drop_database(db_name)


@pytest.fixture
async def http(guarded_stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=guarded_stack.control_plane_url, headers=guarded_stack.api_headers, timeout=60
    ) as client:
        yield client


async def test_a_worker_over_its_latency_slo_refuses_new_calls_until_its_calls_end(
    guarded_stack: LocalStack, http: httpx.AsyncClient, fake_llm_url: str
) -> None:
    agent_id = await museum_agent(http, fake_llm_url, {})
    sess, caller = await start_call(http, agent_id)
    try:
        await caller.next_utterance(timeout=90)  # greeting
        await caller.say(synthesize(QUESTION))
        answer = transcribe((await caller.next_utterance(timeout=60)).pcm)
        assert "sunday afternoon" in answer, answer

        # one slow turn: the worker, with 1 of its 4 slots busy, reports itself full
        def slow(ws: list[dict[str, Any]]) -> bool:
            return len(ws) == 1 and ws[0]["full"] and (ws[0]["p95_latency_s"] or 0) > SLO_S

        workers = await wait_workers(http, slow, timeout=20)
        assert slow(workers), workers
        assert workers[0]["active_jobs"] == 1, workers

        # so the next caller gets a clear refusal instead of a slow or silent call
        started = time.monotonic()
        refused = await http.post("/api/sessions", json={"agent_id": agent_id})
        assert refused.status_code == 503, refused.text
        assert "no agent worker took the session" in refused.json()["detail"]
        assert refused.headers["retry-after"] == "5"
        assert time.monotonic() - started < DISPATCH_TIMEOUT_S + 5

        # the call in progress is not dropped: it still gets answers
        await caller.say(synthesize(QUESTION))
        again = transcribe((await caller.next_utterance(timeout=60)).pcm)
        assert "sunday afternoon" in again, again
    finally:
        await caller.leave()
    record = await wait_for_session(http, sess["session_id"], {"completed", "failed"}, 60)
    assert record["status"] == "completed", record

    # with no call left the latency of past calls no longer holds the worker back
    await wait_workers(http, lambda ws: len(ws) == 1 and not ws[0]["full"], timeout=20)
    assert not (await live_workers(http))[0]["full"]
    nxt, listener = await start_call(http, agent_id, listen_only=True)
    try:
        assert len((await listener.next_utterance(timeout=90)).pcm) > 0
    finally:
        await listener.leave()
