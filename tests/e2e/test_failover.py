"""LLM failover through the real stack: a caller hears the answer when the first LLM is down,
and hears an apology (with the reason in the session record) when every LLM is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from stimm.stack import LocalStack
from stimm.stack.process import free_port
from testkit.audio import synthesize, transcribe
from testkit.caller import Caller
from testkit.fakes.openai_server import FakeOpenAIServer
from tests.e2e.test_roundtrip import QUESTION, agent_body, wait_for_session

pytestmark = pytest.mark.e2e


@pytest.fixture
async def failing_llm() -> AsyncIterator[str]:
    """An OpenAI-compatible endpoint that answers every request with HTTP 500."""
    async with FakeOpenAIServer(mode="fail") as server:
        yield server.base_url


def llm(url: str) -> dict[str, Any]:
    return {"provider": "openai", "model": "scripted", "options": {"base_url": url}}


async def ask(stack: LocalStack, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Start a session, ask the museum question out loud; what the caller heard, the record."""
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=30
    ) as http:
        created = await http.post("/api/agents", json=body)
        assert created.status_code == 201, created.text
        sess = (await http.post("/api/sessions", json={"agent_id": created.json()["id"]})).json()
        caller = Caller()
        await caller.join(sess["livekit_url"], sess["token"])
        try:
            await caller.next_utterance(timeout=90)  # the greeting needs no LLM
            await caller.say(synthesize(QUESTION))
            heard = transcribe((await caller.next_utterance(timeout=90)).pcm)
        finally:
            await caller.leave()
        record = await wait_for_session(http, sess["session_id"], {"completed", "failed"})
    return heard, record


async def test_caller_hears_the_answer_from_the_second_llm(
    stack: LocalStack, fake_llm_url: str, failing_llm: str
) -> None:
    body = agent_body(fake_llm_url, llm=[llm(failing_llm), llm(fake_llm_url)])
    heard, record = await ask(stack, body)
    assert "sunday afternoon" in heard, heard
    assert record["status"] == "completed", record


async def test_all_llms_down_is_an_apology_and_a_failed_record(
    stack: LocalStack, fake_llm_url: str, failing_llm: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    body = agent_body(fake_llm_url, llm=[llm(failing_llm), llm(dead)])
    heard, record = await ask(stack, body)
    assert "sorry" in heard or "trouble" in heard, heard
    assert record["status"] == "failed", record
    assert "llm" in record["failure_reason"].lower(), record["failure_reason"]
