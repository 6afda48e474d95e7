"""Warm transfer with two SIPp phones: the caller, and the colleague the agent phones.

The caller asks for a person; the agent puts them on hold, phones the colleague through the
outbound trunk (a SIPp callee), tells them what the call is about and waits for their keypad:
1 connects the two phones (the agent falls silent), 2 sends the agent back to the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from stimm.stack import LocalStack
from testkit.audio import rms, synthesize, transcribe
from testkit.fakes.openai_server import FakeOpenAIServer, Reply
from testkit.rtp import RATE, RtpReceiver, dtmf_pcap, speech_pcap
from testkit.sipp import SippRun, callee_scenario, caller_scenario, run_sipp
from tests.e2e.test_sip import CALLER, agent_body, wait_for_call

pytestmark = pytest.mark.e2e

REQUEST = "I would like a refund. Please put me through to a person."
HOLDING = "Of course. Please hold while I ask a colleague."
SUMMARY = "The caller wants a refund for order forty two."
DECLINED = "I am sorry, my colleague cannot take your call right now. Anything else?"
COLLEAGUE_SAYS = "Hello, this is Alice from customer support."
CALLER_SAYS = "Thank you Alice, I would like my money back please."
TARGET = "+15550177"
LISTEN_S = 16.0
"""How long the colleague listens after answering before pressing a key."""


@pytest.fixture(scope="module")
async def warm_llm() -> AsyncIterator[str]:
    rules: list[tuple[str, Reply]] = [
        # the summary request quotes the conversation, the caller's request included
        ("conversation so far", SUMMARY),
        ("person", {"say": HOLDING, "tool": "warm_transfer", "arguments": {}}),
    ]
    async with FakeOpenAIServer(
        rules,
        default_reply="Sorry, I only know about refunds.",
        after_tool=[("declined", DECLINED)],
    ) as server:
        yield server.base_url


def silence_pcap(path: Path, seconds: float) -> float:
    """RTP silence (livekit-sip hangs up a leg that sends no RTP for 15 s)."""
    return speech_pcap(path, np.zeros(0, dtype=np.int16), lead_silence_s=seconds, trail_silence_s=0)


async def warm_agent(http: httpx.AsyncClient, llm_url: str, number: str) -> dict[str, Any]:
    body = agent_body(llm_url) | {"tools": [{"type": "warm_transfer", "target": TARGET}]}
    resp = await http.post("/api/agents", json=body)
    assert resp.status_code == 201, resp.text
    agent: dict[str, Any] = resp.json()
    resp = await http.post("/api/phone-numbers", json={"number": number, "agent_id": agent["id"]})
    assert resp.status_code == 201, resp.text
    return agent


def colleague(
    stack: LocalStack, workdir: Path, digit: str, *, speaks: bool
) -> tuple[SippRun, RtpReceiver]:
    """The colleague's phone: answers, listens ``LISTEN_S``, presses ``digit``, maybe speaks,
    and waits for the far end's BYE."""
    assert stack.options.sip_outbound_address is not None
    port = int(stack.options.sip_outbound_address.rsplit(":", 1)[1])
    quiet = workdir / "colleague-quiet.pcap"
    silence_pcap(quiet, LISTEN_S)
    keypad = workdir / "colleague-keypad.pcap"
    keypad_s = dtmf_pcap(keypad, digit)
    steps: list[tuple[str, Any]] = [
        ("play", str(quiet)),
        ("pause", LISTEN_S + 0.2),
        ("play", str(keypad)),
    ]
    # without words it waits for the BYE at once: one during a pause would fail the scenario
    if speaks:
        steps.append(("pause", keypad_s + 0.2))
        words = workdir / "colleague-words.pcap"
        words_s = speech_pcap(
            words, synthesize(COLLEAGUE_SAYS, RATE), lead_silence_s=3.0, trail_silence_s=14.0
        )
        steps += [("play", str(words)), ("pause", words_s)]
    receiver = RtpReceiver()
    sipp = run_sipp(
        workdir / "sipp-colleague",
        callee_scenario(steps, hang_up=False),
        remote=None,
        local_port=port,
        rtp_port=receiver.port,
        timeout_s=150,
    )
    return sipp, receiver


def caller(
    stack: LocalStack, workdir: Path, number: str, on_hold_s: float, then: str | None
) -> tuple[SippRun, RtpReceiver]:
    """The caller: greeted, asks for a person, waits ``on_hold_s`` (RTP silence), then maybe
    says ``then``, and hangs up."""
    audio = np.concatenate(
        [
            synthesize(REQUEST, RATE),
            np.zeros(int(on_hold_s * RATE), dtype=np.int16),
            synthesize(then, RATE) if then else np.zeros(0, dtype=np.int16),
        ]
    )
    talk = workdir / "caller.pcap"
    talk_s = speech_pcap(talk, audio, trail_silence_s=3.0)
    receiver = RtpReceiver()
    sipp = run_sipp(
        workdir / "sipp-caller",
        caller_scenario([("pause", 10.0), ("play", str(talk)), ("pause", talk_s + 0.5)]),
        remote=f"127.0.0.1:{stack.options.sip_port}",
        service=number,
        caller=CALLER,
        rtp_port=receiver.port,
        timeout_s=150,
    )
    return sipp, receiver


def briefed(heard: str) -> bool:
    """Whether ``heard`` holds the summary (Whisper hears "refund" as "read" at times)."""
    return "order" in heard and ("42" in heard or "forty" in heard)


def answered_at(sipp: SippRun) -> float:
    """When the colleague's phone got the ACK of its 200 OK (the call is up)."""
    acks = sipp.received("ACK")
    assert acks, sipp.messages()[-3000:]
    return acks[0].at


async def test_colleague_hears_summary_then_talks_with_the_caller(
    sip_stack: LocalStack, warm_llm: str, tmp_path: Path
) -> None:
    number = "+15550171"
    async with httpx.AsyncClient(
        base_url=sip_stack.control_plane_url, headers=sip_stack.api_headers, timeout=30
    ) as http:
        agent = await warm_agent(http, warm_llm, number)
        human, heard_by_human = colleague(sip_stack, tmp_path, "1", speaks=True)
        try:
            await asyncio.sleep(0.5)  # SIPp listens
            phone, heard_by_caller = caller(sip_stack, tmp_path, number, 45.0, CALLER_SAYS)
            try:
                code = await asyncio.to_thread(phone.wait, 160)
                human_code = await asyncio.to_thread(human.wait, 30)
            finally:
                heard_by_caller.close()
                phone.stop()
        finally:
            heard_by_human.close()
            human.stop()
        assert code == 0, phone.messages()[-4000:]
        # the colleague's call ended with the caller's: the agent's side sent it a BYE
        assert human_code == 0, human.messages()[-4000:]

        up = answered_at(human)
        pressed = up + LISTEN_S
        briefing = transcribe(heard_by_human.audio(end=pressed), RATE)
        assert briefed(briefing), briefing
        assert "press 1" in briefing or "say yes" in briefing, briefing
        # on hold, the caller heard music but none of the consultation
        held = heard_by_caller.audio(start=up, end=pressed)
        assert rms(held) > 100, "the caller heard no hold music"
        assert "order" not in transcribe(held, RATE)
        # connected: each phone hears the other's words
        after = transcribe(heard_by_caller.audio(start=pressed), RATE)
        assert "alice" in after or "customer support" in after, after
        to_human = transcribe(heard_by_human.audio(start=pressed + 3.0), RATE)
        assert "money back" in to_human, to_human
        assert not briefed(to_human), "the agent kept talking to the colleague"

        call = await wait_for_call(http, agent["id"], {"completed", "failed"})
    assert call["status"] == "completed", call
    said = " ".join(t["text"].lower() for t in call["turns"] if t["role"] == "assistant")
    assert said.endswith(HOLDING.lower()), call["turns"]


async def test_declined_transfer_returns_the_caller_to_the_agent(
    sip_stack: LocalStack, warm_llm: str, tmp_path: Path
) -> None:
    number = "+15550172"
    async with httpx.AsyncClient(
        base_url=sip_stack.control_plane_url, headers=sip_stack.api_headers, timeout=30
    ) as http:
        agent = await warm_agent(http, warm_llm, number)
        human, heard_by_human = colleague(sip_stack, tmp_path, "2", speaks=False)
        try:
            await asyncio.sleep(0.5)
            phone, heard_by_caller = caller(sip_stack, tmp_path, number, 40.0, None)
            try:
                code = await asyncio.to_thread(phone.wait, 160)
            finally:
                heard_by_caller.close()
                phone.stop()
            human_code = await asyncio.to_thread(human.wait, 5)
        finally:
            heard_by_human.close()
            human.stop()
        assert code == 0, phone.messages()[-4000:]
        # the agent hung up on the colleague who declined
        assert human_code == 0, human.messages()[-4000:]
        (bye,) = human.received("BYE")
        assert bye.at < answered_at(human) + LISTEN_S + 6, "the colleague was not hung up on"

        briefing = transcribe(heard_by_human.audio(end=bye.at), RATE)
        assert briefed(briefing), briefing
        back = transcribe(heard_by_caller.audio(start=bye.at), RATE)
        assert "colleague cannot take" in back, back

        call = await wait_for_call(http, agent["id"], {"completed", "failed"})
    assert call["status"] == "completed", call
    said = " ".join(t["text"].lower() for t in call["turns"] if t["role"] == "assistant")
    assert "colleague cannot take your call" in said, call["turns"]
