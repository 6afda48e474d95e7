"""Answering-machine detection on outbound calls, with SIPp answering as a voicemail (greeting,
then a beep) and as a person (a short hello)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from stimm.stack import LocalStack
from testkit.audio import synthesize, transcribe
from testkit.rtp import RATE, RtpReceiver, speech_pcap
from testkit.sipp import SippRun, callee_scenario, run_sipp
from tests.support.voicemail import machine_audio

pytestmark = pytest.mark.e2e

GREETING = "Hello, this is the Stimm test agent calling about your order."
MESSAGE = "This is the Stimm test agent. Your order is ready for pickup. Goodbye."


async def call(
    http: httpx.AsyncClient,
    sip_stack: LocalStack,
    agent_id: str,
    workdir: Path,
    steps: list[Any],
    *,
    hang_up: bool,
) -> tuple[dict[str, Any], SippRun, RtpReceiver]:
    assert sip_stack.options.sip_outbound_address is not None
    uas_port = int(sip_stack.options.sip_outbound_address.rsplit(":", 1)[1])
    receiver = RtpReceiver()
    try:
        sipp = run_sipp(
            workdir,
            callee_scenario(steps, hang_up=hang_up),
            remote=None,
            local_port=uas_port,
            rtp_port=receiver.port,
            timeout_s=90,
        )
        await asyncio.sleep(0.5)  # SIPp is listening
        resp = await http.post("/api/calls", json={"agent_id": agent_id, "to": "+14155550123"})
        assert resp.status_code == 201, resp.text
        code = await asyncio.to_thread(sipp.wait, 90)
    finally:
        receiver.close()
    assert code == 0, sipp.messages()[-3000:]
    placed = resp.json()
    deadline = time.monotonic() + 30
    while True:
        record = (await http.get(f"/api/calls/{placed['id']}")).json()
        if record["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return record, sipp, receiver
        await asyncio.sleep(0.5)


async def test_machine_gets_the_message_after_the_beep_and_a_person_the_greeting(
    sip_stack: LocalStack, amd_llm: str, tmp_path: Path
) -> None:
    agent = {
        "name": "Order notices",
        "instructions": "You tell customers their order is ready, in one short sentence.",
        "greeting": GREETING,
        "llm": {"provider": "openai", "model": "scripted", "options": {"base_url": amd_llm}},
        "voicemail": {"detect": True, "on_machine": "leave_message", "message": MESSAGE},
    }
    async with httpx.AsyncClient(
        base_url=sip_stack.control_plane_url, headers=sip_stack.api_headers, timeout=60
    ) as http:
        resp = await http.post("/api/agents", json=agent)
        assert resp.status_code == 201, resp.text
        agent_id = resp.json()["id"]

        machine = tmp_path / "machine.pcap"
        # the recorder keeps sending (silent) RTP while the message is left
        heard_s = speech_pcap(machine, machine_audio(), trail_silence_s=25.0)
        record, sipp, receiver = await call(
            http,
            sip_stack,
            agent_id,
            tmp_path / "machine",
            [("play", str(machine))],
            hang_up=False,
        )
        assert record["answered_by"] == "machine", record
        assert record["status"] == "completed", record
        assert sipp.received("BYE"), "the agent did not hang up after its message"
        ack_at = next(m.at for m in sipp.log() if not m.sent and m.method == "ACK")
        beep_end = ack_at + heard_s - 25.0  # lead silence, greeting, gap, beep
        first_voice = receiver.first_voice_at(after=ack_at)
        assert first_voice is not None, "the agent left no message"
        assert first_voice > beep_end - 0.2, (
            f"the agent spoke {beep_end - first_voice:.1f}s before the beep ended"
        )
        said = transcribe(receiver.audio(start=first_voice), RATE)
        assert "ready for pickup" in said, said
        assert "calling about your order" not in said, said  # no greeting to a machine

        hello = tmp_path / "hello.pcap"
        hello_s = speech_pcap(hello, synthesize("Hello?", RATE), trail_silence_s=14.0)
        record, sipp, receiver = await call(
            http,
            sip_stack,
            agent_id,
            tmp_path / "human",
            [("play", str(hello)), ("pause", hello_s)],
            hang_up=True,
        )
    assert record["answered_by"] == "human", record
    said = transcribe(receiver.audio(), RATE)
    assert "calling about your order" in said or "stimm test agent" in said, said
    assert "ready for pickup" not in said, said
    assert any(t["role"] == "assistant" for t in record["turns"]), record
