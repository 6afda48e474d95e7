"""A web session whose caller never joins gives its worker slot back after the agent's no-show
timeout and is recorded ``abandoned``; a caller who leaves without a word is no failure."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from stimm.stack import LocalStack
from testkit.caller import Caller
from tests.e2e.test_roundtrip import agent_body, wait_for_session

pytestmark = pytest.mark.e2e

NO_SHOW_S = 3


async def sessions_on_workers(http: httpx.AsyncClient) -> list[str]:
    resp = await http.get("/api/workers")
    resp.raise_for_status()
    return [s for w in resp.json()["items"] for s in w["sessions"]]


async def wait_until(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.25)
    return True


async def test_nobody_joins_the_agent_leaves_and_the_slot_is_free(
    stack: LocalStack, fake_llm_url: str
) -> None:
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=30
    ) as http:
        body = agent_body(fake_llm_url, turn_taking={"no_show_timeout_s": NO_SHOW_S})
        agent = (await http.post("/api/agents", json=body)).json()
        assert agent["turn_taking"]["no_show_timeout_s"] == NO_SHOW_S

        resp = await http.post("/api/sessions", json={"agent_id": agent["id"]})
        assert resp.status_code == 201, resp.text
        session_id = resp.json()["session_id"]
        requested = time.monotonic()
        assert await wait_until(lambda: _contains(http, session_id), timeout=10), (
            "the worker never reported the session"
        )

        # nobody joins: within the timeout and a few seconds the worker holds it no more
        freed = await wait_until(lambda: _lacks(http, session_id), timeout=NO_SHOW_S + 12)
        assert freed, "the worker still holds the session nobody joined"
        assert time.monotonic() - requested < NO_SHOW_S + 15
        record = await wait_for_session(http, session_id, {"abandoned", "completed", "failed"})
        assert record["status"] == "abandoned", record
        assert record["failure_reason"] == "the caller never joined"

        # a caller who joins and leaves without a word ends a completed session
        resp = await http.post("/api/sessions", json={"agent_id": agent["id"]})
        assert resp.status_code == 201, resp.text
        caller = Caller()
        await caller.join(resp.json()["livekit_url"], resp.json()["token"])
        await caller.next_utterance(timeout=30)  # the greeting
        await caller.leave()
        left = await wait_for_session(
            http, resp.json()["session_id"], {"abandoned", "completed", "failed"}
        )
        assert left["status"] == "completed", left


async def _contains(http: httpx.AsyncClient, session_id: str) -> bool:
    return session_id in await sessions_on_workers(http)


async def _lacks(http: httpx.AsyncClient, session_id: str) -> bool:
    return session_id not in await sessions_on_workers(http)
