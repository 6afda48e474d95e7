"""Phone calls through the real LiveKit SIP service, with SIPp as the phone.

SIPp places (or answers) the call over SIP on loopback and plays the caller's voice as G.711
RTP; the agent's voice comes back as RTP to a receiver in the test, which decodes it and
transcribes it with Whisper.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from livekit import api

from stimm.stack import LocalStack
from testkit.audio import rms, synthesize, transcribe
from testkit.fakes.openai_server import FakeOpenAIServer, Reply
from testkit.rtp import RATE, RtpReceiver, dtmf_pcap, speech_pcap
from testkit.sipp import SippRun, callee_scenario, caller_scenario, run_sipp

pytestmark = pytest.mark.e2e

GREETING = "Hello, this is the Stimm test agent. How can I help you?"
QUESTION = "When is the museum open?"
NUMBER = "+15550100"
CALLER = "+15550999"


def agent_body(llm_url: str) -> dict[str, Any]:
    return {
        "name": "Phone museum guide",
        "instructions": "You answer questions about the museum in one short sentence.",
        "greeting": GREETING,
        "llm": {"provider": "openai", "model": "scripted", "options": {"base_url": llm_url}},
    }


async def wait_for_call(
    http: httpx.AsyncClient, agent_id: str, done: set[str], timeout: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        listed = (await http.get("/api/calls", params={"agent_id": agent_id})).json()
        if listed["items"]:
            call: dict[str, Any] = (await http.get(f"/api/calls/{listed['items'][0]['id']}")).json()
            if call["status"] in done or time.monotonic() > deadline:
                return call
        elif time.monotonic() > deadline:
            raise AssertionError(f"no call recorded for agent {agent_id}")
        await asyncio.sleep(0.5)


async def room_exists(stack: LocalStack, room: str) -> bool:
    url = f"http://127.0.0.1:{stack.options.livekit_port}"
    async with api.LiveKitAPI(url, stack.options.api_key, stack.options.api_secret) as lk:
        rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
    return bool(rooms.rooms)


async def test_phone_caller_hears_greeting_and_answer_and_keypad_reaches_agent(
    sip_stack: LocalStack, fake_llm_url: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(
        base_url=sip_stack.control_plane_url, headers=sip_stack.api_headers, timeout=30
    ) as http:
        agent = (await http.post("/api/agents", json=agent_body(fake_llm_url))).json()
        resp = await http.post(
            "/api/phone-numbers", json={"number": NUMBER, "agent_id": agent["id"]}
        )
        assert resp.status_code == 201, resp.text

        question = tmp_path / "question.pcap"
        spoken_s = speech_pcap(question, synthesize(QUESTION, RATE))
        keypad = tmp_path / "keypad.pcap"
        keypad_s = dtmf_pcap(keypad, "42")
        receiver = RtpReceiver()
        try:
            sipp = run_sipp(
                tmp_path / "sipp",
                caller_scenario(
                    [
                        ("pause", 10.0),  # the agent joins and greets
                        ("play", str(question)),
                        ("pause", spoken_s + 12.0),  # the agent answers
                        ("play", str(keypad)),
                        ("pause", keypad_s + 8.0),  # the agent reacts to the digits
                    ]
                ),
                remote=f"127.0.0.1:{sip_stack.options.sip_port}",
                service=NUMBER,
                caller=CALLER,
                rtp_port=receiver.port,
            )
            code = await asyncio.to_thread(sipp.wait, 120)
        finally:
            receiver.close()
        assert code == 0, sipp.messages()[-3000:]
        assert 200 in sipp.responses()

        heard = receiver.audio()
        assert rms(heard) > 300, "the agent's RTP is silence"
        text = transcribe(heard, RATE)
        assert "stimm test agent" in text or "how can i help" in text, text
        assert "sunday afternoon" in text, text

        call = await wait_for_call(http, agent["id"], {"completed", "failed"})
    assert call["status"] == "completed", call
    assert call["outcome"] == "completed", call
    assert call["channel"] == "phone" and call["direction"] == "inbound"
    assert call["caller"] == CALLER and call["callee"] == NUMBER, call
    user = " ".join(t["text"].lower() for t in call["turns"] if t["role"] == "user")
    said = " ".join(t["text"].lower() for t in call["turns"] if t["role"] == "assistant")
    assert "museum" in user and "keypad input: 42" in user, call["turns"]
    assert "sunday afternoon" in said, call["turns"]
    # BYE closed the room
    deadline = time.monotonic() + 20
    while await room_exists(sip_stack, call["room"]) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert not await room_exists(sip_stack, call["room"])


async def test_call_to_unassigned_number_is_refused_at_once(
    sip_stack: LocalStack, tmp_path: Path
) -> None:
    receiver = RtpReceiver()
    started = time.monotonic()
    try:
        sipp = run_sipp(
            tmp_path / "sipp",
            caller_scenario([("pause", 1.0)]),
            remote=f"127.0.0.1:{sip_stack.options.sip_port}",
            service="+15559999",
            rtp_port=receiver.port,
            timeout_s=30,
        )
        code = await asyncio.to_thread(sipp.wait, 60)
    finally:
        receiver.close()
    elapsed = time.monotonic() - started
    responses = sipp.responses()
    assert code != 0
    assert 200 not in responses, responses
    assert any(c >= 400 for c in responses), responses
    assert elapsed < 10, f"the caller was left waiting {elapsed:.1f}s"
    log = (sip_stack.log_dir / "livekit-sip.log").read_text(errors="replace")
    assert "+15559999" in log


async def test_outbound_call_is_answered_and_agent_greets(
    sip_stack: LocalStack, fake_llm_url: str, tmp_path: Path
) -> None:
    assert sip_stack.options.sip_outbound_address is not None
    uas_port = int(sip_stack.options.sip_outbound_address.rsplit(":", 1)[1])
    receiver = RtpReceiver()
    async with httpx.AsyncClient(
        base_url=sip_stack.control_plane_url, headers=sip_stack.api_headers, timeout=60
    ) as http:
        agent = (await http.post("/api/agents", json=agent_body(fake_llm_url))).json()
        try:
            sipp = run_sipp(
                tmp_path / "sipp",
                callee_scenario([("pause", 12.0)]),
                remote=None,
                local_port=uas_port,
                rtp_port=receiver.port,
            )
            await asyncio.sleep(0.5)  # SIPp is listening
            resp = await http.post("/api/calls", json={"agent_id": agent["id"], "to": "+15550123"})
            assert resp.status_code == 201, resp.text
            placed = resp.json()
            assert placed["outcome"] == "answered" and placed["direction"] == "outbound"
            code = await asyncio.to_thread(sipp.wait, 60)
        finally:
            receiver.close()
        assert code == 0, sipp.messages()[-3000:]
        heard = receiver.audio()
        assert rms(heard) > 300, "the agent's RTP is silence"
        text = transcribe(heard, RATE)
        assert "stimm test agent" in text or "how can i help" in text, text

        call = (await http.get(f"/api/calls/{placed['id']}")).json()
        deadline = time.monotonic() + 30
        while call["status"] not in ("completed", "failed") and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            call = (await http.get(f"/api/calls/{placed['id']}")).json()
    assert call["status"] == "completed", call
    assert call["callee"] == "+15550123"
    assert any(t["role"] == "assistant" for t in call["turns"]), call


# --- call transfer ----------------------------------------------------------------------------

TRANSFER_REQUEST = "Please transfer me to a human."
TRANSFERRING = "Of course, I am transferring you to a colleague now."
APOLOGY = "I am sorry, I could not transfer you. Can I help you with something else?"
TARGET = "sip:+15550199@127.0.0.1:5999"


@pytest.fixture(scope="module")
async def transfer_llm() -> AsyncIterator[str]:
    rules: list[tuple[str, Reply]] = [
        ("transfer", {"say": TRANSFERRING, "tool": "transfer_call", "arguments": {}}),
        ("museum", "The museum is open every Sunday afternoon."),
    ]
    # the tool's ToolError text goes back to the LLM, which is asked to apologise
    async with FakeOpenAIServer(
        rules,
        default_reply="Sorry, I only know about the museum.",
        after_tool=[("transfer failed", APOLOGY)],
    ) as server:
        yield server.base_url


async def transfer_agent(http: httpx.AsyncClient, llm_url: str, number: str) -> dict[str, Any]:
    body = agent_body(llm_url) | {"tools": [{"type": "transfer_call", "target": TARGET}]}
    agent: dict[str, Any] = (await http.post("/api/agents", json=body)).json()
    resp = await http.post("/api/phone-numbers", json={"number": number, "agent_id": agent["id"]})
    assert resp.status_code == 201, resp.text
    return agent


async def call_and_transfer(
    stack: LocalStack,
    workdir: Path,
    number: str,
    after: list[tuple[str, Any]],
    *,
    hang_up: bool,
    listen_s: float = 0.8,
) -> tuple[SippRun, RtpReceiver]:
    """Call ``number``, greet, ask for a human, answer the REFER as ``after`` says.

    ``listen_s`` of silence follow the request, sent as RTP while the caller waits for the
    REFER (a call quiet for 15 s is hung up by livekit-sip)."""
    request = workdir / "transfer-request.pcap"
    spoken_s = speech_pcap(request, synthesize(TRANSFER_REQUEST, RATE), trail_silence_s=listen_s)
    steps: list[tuple[str, Any]] = [("pause", 10.0), ("play", str(request))]
    receiver = RtpReceiver()
    try:
        sipp = run_sipp(
            workdir / "sipp",
            caller_scenario([*steps, *after], hang_up=hang_up),
            remote=f"127.0.0.1:{stack.options.sip_port}",
            service=number,
            caller=CALLER,
            rtp_port=receiver.port,
            timeout_s=120 + spoken_s,
        )
        code = await asyncio.to_thread(sipp.wait, 150 + spoken_s)
    finally:
        receiver.close()
    assert code == 0, sipp.messages()[-4000:]
    return sipp, receiver


async def test_agent_transfers_the_phone_caller_after_saying_so(
    sip_stack: LocalStack, transfer_llm: str, tmp_path: Path
) -> None:
    number = "+15550101"
    async with httpx.AsyncClient(
        base_url=sip_stack.control_plane_url, headers=sip_stack.api_headers, timeout=30
    ) as http:
        agent = await transfer_agent(http, transfer_llm, number)
        # the phone takes the REFER (202, NOTIFY 100 Trying, NOTIFY 200 OK) and waits for the
        # agent's side to hang up, as the transferee of a cold transfer does
        sipp, receiver = await call_and_transfer(
            sip_stack, tmp_path, number, [("refer", "accept")], hang_up=False
        )
        # SIPp exits 0 only if everything came in this order: REFER, the 200s to both
        # NOTIFYs, then a BYE from the agent's side
        (refer,) = sipp.received("REFER")
        assert refer.header("Refer-To") == f"<{TARGET}>", refer.text
        assert len(sipp.received("BYE")) == 1

        before = transcribe(receiver.audio(end=refer.at), RATE)
        assert "stimm test agent" in before or "how can i help" in before, before
        assert "transferring you" in before, before
        # once the transfer has started the caller hears nothing more from the agent
        assert receiver.first_voice_at(after=refer.at) is None, transcribe(
            receiver.audio(start=refer.at), RATE
        )

        call = await wait_for_call(http, agent["id"], {"completed", "failed"})
    assert call["status"] == "completed" and call["outcome"] == "completed", call
    assert call["failure_reason"] is None, call
    user = " ".join(t["text"].lower() for t in call["turns"] if t["role"] == "user")
    said = " ".join(t["text"].lower() for t in call["turns"] if t["role"] == "assistant")
    assert "transfer" in user, call["turns"]
    assert said.endswith(TRANSFERRING.lower()), call["turns"]


@pytest.mark.parametrize(
    ("answer", "number"),
    [("decline", "+15550102"), ("busy", "+15550103")],
    ids=["declined", "target-busy"],
)
async def test_refused_transfer_keeps_the_caller_with_the_agent(
    sip_stack: LocalStack, transfer_llm: str, tmp_path: Path, answer: str, number: str
) -> None:
    """``decline``: the phone answers the REFER with 603; ``busy``: it accepts the REFER, but
    its NOTIFY reports that the transfer target was busy (486)."""
    # the caller listens to the apology, asks, and listens to the answer: silence is sent as
    # RTP all along, as a phone does (livekit-sip hangs up after 15 s without RTP)
    question = tmp_path / "question.pcap"
    question_s = speech_pcap(
        question, synthesize(QUESTION, RATE), lead_silence_s=9.0, trail_silence_s=12.0
    )
    async with httpx.AsyncClient(
        base_url=sip_stack.control_plane_url, headers=sip_stack.api_headers, timeout=30
    ) as http:
        agent = await transfer_agent(http, transfer_llm, number)
        sipp, receiver = await call_and_transfer(
            sip_stack,
            tmp_path,
            number,
            [("refer", answer), ("play", str(question)), ("pause", question_s + 0.5)],
            hang_up=True,
            # the REFER comes after "transferring you" has played (5 s or more): the silence
            # ends before it, so this play never overlaps the question's
            listen_s=4.0,
        )
        (refer,) = sipp.received("REFER")
        assert refer.header("Refer-To") == f"<{TARGET}>", refer.text
        assert not sipp.received("BYE"), "the agent's side hung up on the caller"

        before = transcribe(receiver.audio(end=refer.at), RATE)
        assert "transferring you" in before, before
        after = transcribe(receiver.audio(start=refer.at), RATE)
        assert "sorry" in after and "something else" in after, after
        assert "sunday afternoon" in after, after

        call = await wait_for_call(http, agent["id"], {"completed", "failed"})
    assert call["status"] == "completed" and call["outcome"] == "completed", call
    assert call["failure_reason"] is None, call
    said = " ".join(t["text"].lower() for t in call["turns"] if t["role"] == "assistant")
    assert "could not transfer you" in said and "sunday afternoon" in said, call["turns"]
