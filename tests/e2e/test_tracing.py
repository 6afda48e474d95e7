"""One call is one OpenTelemetry trace: the control plane's session request, then the worker's
STT, LLM and TTS spans of every turn, all received by an OTLP collector with the session id."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from stimm.stack import LocalStack
from testkit.audio import synthesize
from testkit.caller import Caller
from testkit.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.e2e.test_roundtrip import agent_body, wait_for_session

pytestmark = pytest.mark.e2e

QUESTIONS = ["When is the museum open?", "Is the museum open on Sunday?"]
SESSION_ID = "stimm.session_id"


async def session_trace(
    receiver: OtlpReceiver, session_id: str, timeout: float = 30.0
) -> list[ReceivedSpan]:
    """The spans of the trace whose ``POST /api/sessions`` started ``session_id``, once the
    worker has sent its session span (it ends with the call)."""
    deadline = time.monotonic() + timeout
    while True:
        spans = receiver.spans()
        request = [
            s
            for s in spans
            if s.name == "POST /api/sessions" and s.attributes.get(SESSION_ID) == session_id
        ]
        trace = [s for s in spans if request and s.trace_id == request[0].trace_id]
        if any(s.name == "agent_session" for s in trace) or time.monotonic() > deadline:
            return trace
        await asyncio.sleep(0.5)


async def test_one_call_is_one_trace_with_every_turns_stages(
    stack: LocalStack, otlp_receiver: OtlpReceiver, fake_llm_url: str, run_dir: Path
) -> None:
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=30
    ) as http:
        agent = (await http.post("/api/agents", json=agent_body(fake_llm_url))).json()
        resp = await http.post("/api/sessions", json={"agent_id": agent["id"]})
        assert resp.status_code == 201, resp.text
        sess = resp.json()
        session_id = sess["session_id"]

        caller = Caller()
        await caller.join(sess["livekit_url"], sess["token"])
        try:
            await caller.next_utterance(timeout=90)  # greeting
            for question in QUESTIONS:
                await caller.say(synthesize(question))
                await caller.next_utterance(timeout=60)
        finally:
            await caller.leave()
        record = await wait_for_session(http, session_id, {"completed", "failed"})
    assert record["status"] == "completed", record
    assert sum(t["role"] == "user" for t in record["turns"]) == len(QUESTIONS), record["turns"]

    trace = await session_trace(otlp_receiver, session_id)
    (run_dir / f"trace-{session_id}.json").write_text(
        json.dumps([s.__dict__ for s in trace], indent=1, default=str)
    )
    assert trace, "the control plane's POST /api/sessions span never arrived"
    services = {s.service for s in trace}
    assert services == {"stimm-control-plane", "stimm-worker"}, services

    worker = [s for s in trace if s.service == "stimm-worker"]
    unmarked = Counter(s.name for s in worker if s.attributes.get(SESSION_ID) != session_id)
    assert not unmarked, f"worker spans without the session id: {unmarked}"

    # STT: livekit's user_turn span, one per question, named with the STT model
    user_turns = sorted((s for s in worker if s.name == "user_turn"), key=lambda s: s.start_ns)
    assert len(user_turns) == len(QUESTIONS), [s.attributes for s in user_turns]
    assert all(s.attributes.get("gen_ai.request.model") for s in user_turns)
    llm = [s for s in worker if s.name == "llm_request"]
    tts = [s for s in worker if s.name == "tts_request"]
    # each question's turn has its LLM request, then its reply synthesized
    for turn, next_turn in zip(user_turns, [*user_turns[1:], None], strict=True):
        before_next = next_turn.start_ns if next_turn else float("inf")
        turn_llm = [s for s in llm if turn.start_ns < s.start_ns < before_next]
        turn_tts = [s for s in tts if turn.start_ns < s.start_ns < before_next]
        assert turn_llm and turn_tts, (turn.attributes, Counter(s.name for s in worker))
    assert any(s.end_ns < user_turns[0].start_ns for s in tts), "the greeting was not traced"

    # the worker's own requests to the control plane are in the session's trace too
    cp_names = {s.name for s in trace if s.service == "stimm-control-plane"}
    assert "GET /api/worker/agents/{agent_id}" in cp_names, cp_names

    # what the caller said is not written into traces unless LIVEKIT_TELEMETRY_ALLOW_PII is set
    said = [s.name for s in trace if "museum" in json.dumps(s.attributes).lower()]
    assert not said, f"spans holding the conversation: {said}"
