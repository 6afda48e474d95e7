"""The real livekit OpenAI plugin streams scripted replies from the local fake server."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from livekit.agents import Agent, AgentSession, RunResult, llm
from livekit.plugins import openai

from testkit.fakes.openai_server import FakeOpenAIServer, split_reply

pytestmark = pytest.mark.unit

BOOKING_REPLY = "Of course! For how many people, and at what time?"
DEFAULT = "Sorry, I did not catch that."
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer([("book a table", BOOKING_REPLY)], DEFAULT) as fake:
        yield fake


def _llm(server: FakeOpenAIServer) -> openai.LLM:
    return openai.LLM(model="fake-model", base_url=server.base_url, api_key="test-key")


async def _complete(model: llm.LLM[Any], text: str) -> tuple[str, list[llm.ChatChunk]]:
    chat_ctx = llm.ChatContext()
    chat_ctx.add_message(role="system", content="You take restaurant bookings.")
    chat_ctx.add_message(role="user", content=text)
    chunks: list[llm.ChatChunk] = []
    async with model.chat(chat_ctx=chat_ctx) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    content = "".join(c.delta.content or "" for c in chunks if c.delta)
    return content, chunks


async def test_plugin_streams_scripted_reply(server: FakeOpenAIServer) -> None:
    model = _llm(server)
    try:
        content, chunks = await _complete(model, "Hi, can I book a table for two tonight?")
    finally:
        await model.aclose()

    assert content == BOOKING_REPLY
    assert sum(1 for c in chunks if c.delta and c.delta.content) > 3, "reply was not streamed"
    assert any(c.usage is not None for c in chunks), "usage chunk not parsed"

    [request] = server.requests
    assert request["stream"] is True
    assert request["model"] == "fake-model"
    assert request["messages"][-1] == {
        "role": "user",
        "content": "Hi, can I book a table for two tonight?",
    }
    assert request["messages"][0]["role"] == "system"
    assert server.user_messages == ["Hi, can I book a table for two tonight?"]


async def test_default_reply_when_no_rule_matches(server: FakeOpenAIServer) -> None:
    model = _llm(server)
    try:
        content, _ = await _complete(model, "What is the weather like?")
    finally:
        await model.aclose()
    assert content == DEFAULT


async def test_agent_session_answers_with_scripted_reply(server: FakeOpenAIServer) -> None:
    model = _llm(server)
    async with AgentSession(llm=model) as session:
        await session.start(Agent(instructions="You take restaurant bookings for Chez Stimm."))
        result: RunResult[None] = await session.run(
            user_input="I would like to book a table for two."
        )

        message = result.expect.next_event().is_message(role="assistant")
        assert BOOKING_REPLY in (message.event().item.text_content or "")
        result.expect.no_more_events()

    await model.aclose()
    last = server.requests[-1]
    assert last["messages"][0]["role"] == "system"
    assert "Chez Stimm" in last["messages"][0]["content"]
    assert server.user_messages[-1] == "I would like to book a table for two."


def test_split_reply_keeps_the_text() -> None:
    pieces = split_reply(BOOKING_REPLY)
    assert len(pieces) > 3
    assert "".join(pieces) == BOOKING_REPLY


async def test_standalone_process_prints_base_url(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"match": "opening hours", "reply": "We open at noon."}]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "testkit.fakes.openai_server",
        "--port",
        "0",
        "--reply",
        "Default answer.",
        "--rules",
        str(rules),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        base_url = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")

        model = openai.LLM(model="fake", base_url=base_url, api_key="test-key")
        try:
            hours, _ = await _complete(model, "What are your opening hours?")
            other, _ = await _complete(model, "Hello there")
            listed = await model._client.models.list()
        finally:
            await model.aclose()
        assert hours == "We open at noon."
        assert other == "Default answer."
        assert [m.id for m in listed.data] == ["fake"]
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), timeout=10) == 0


async def test_a_reply_can_speak_then_call_a_tool_and_answer_its_result() -> None:
    """What a model does around a call transfer: "I am transferring you" and the tool call in
    one reply, then its own words (not the echoed result) when the tool fails."""
    rules: list[tuple[str, Any]] = [
        ("human", {"say": "Transferring you now.", "tool": "transfer_call", "arguments": {}})
    ]
    async with FakeOpenAIServer(rules, after_tool=[("failed", "Sorry, that did not work.")]) as s:
        text, chunks = await _complete(_llm(s), "Get me a human please.")
        assert text == "Transferring you now."
        calls = [c for ch in chunks if ch.delta for c in ch.delta.tool_calls]
        assert [c.name for c in calls] == ["transfer_call"]

        ctx = llm.ChatContext()
        ctx.add_message(role="user", content="Get me a human please.")
        call = llm.FunctionCall(call_id="c1", name="transfer_call", arguments="{}")
        ctx.items += [
            call,
            llm.FunctionCallOutput(call_id="c1", output="The transfer failed.", is_error=True),
        ]
        async with _llm(s).chat(chat_ctx=ctx) as stream:
            answer = "".join([c.delta.content or "" async for c in stream if c.delta])
        assert answer == "Sorry, that did not work."
