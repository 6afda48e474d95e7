"""A campaign against SIPp callees through the real stack (livekit-server, livekit-sip,
PostgreSQL, the worker): a person, a busy line, a phone nobody answers and an answering machine,
two calls at once, with retries, and the control plane killed mid-campaign and restarted.

What the callees received (SIPp's own log) is the measure: calls per number and calls at once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from stimm.stack import LocalStack
from testkit.audio import synthesize
from testkit.rtp import RATE, RtpReceiver, speech_pcap
from testkit.sipp import (
    Answer,
    Callee,
    SippRun,
    callee_router,
    most_at_once,
    run_sipp,
)
from tests.support.voicemail import machine_audio

pytestmark = pytest.mark.e2e

RETRY_DELAY_S = 2.0


def callees(workdir: Path) -> dict[str, tuple[Callee, str, int]]:
    """Number → (what the callee does, the row's expected outcome, calls it should get)."""
    hello = workdir / "hello.pcap"
    # a person answers at once, says hello and listens a while (the agent may take seconds to
    # join on a busy machine, more while the control plane restarts), then hangs up
    hello_s = speech_pcap(hello, synthesize("Hello?", RATE), trail_silence_s=20.0)
    person = Answer((("play", str(hello)), ("pause", hello_s)))
    machine = workdir / "machine.pcap"
    speech_pcap(machine, machine_audio(), trail_silence_s=20.0)
    # a machine rings a while before it answers (the agent is listening when its greeting
    # plays); the agent hangs up on it
    voicemail = Answer((("play", str(machine)),), hang_up=False, ring_s=3.0)
    return {
        "+14155550101": (person, "answered", 1),
        "+14155550102": ("busy", "busy", 2),
        "+14155550103": ("no-answer", "no-answer", 2),
        "+14155550104": (voicemail, "voicemail", 1),
        "+14155550105": ("busy", "busy", 2),
        "+14155550106": (person, "answered", 1),
    }


def calling_window() -> dict[str, str]:
    """Two hours around now, in UTC (every row's time zone)."""
    now = datetime.now(UTC)
    return {
        "window_start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "window_end": (now + timedelta(hours=1)).strftime("%H:%M"),
    }


async def wait_for_calls_under_way(sipp: SippRun, talking: str, ringing: str) -> None:
    """Until SIPp is talking with ``talking`` (answered, no BYE yet) while ``ringing`` rings."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = {d.number: d for d in sipp.dialogs()}  # each number's latest call
        call, ring = now.get(talking), now.get(ringing)
        if (
            call is not None
            and call.final_status == 200
            and not any(m.method == "BYE" for m in call.messages)
            and ring is not None
            and ring.final_status is None
        ):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never talking with {talking} while {ringing} rang")


async def wait_for_campaign(http: httpx.AsyncClient, campaign_id: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            campaign = (await http.get(f"/api/campaigns/{campaign_id}")).json()
        except httpx.TransportError:  # the control plane is restarting
            campaign = None
        if campaign is not None and campaign["status"] == "completed":
            return campaign
        assert time.monotonic() < deadline, f"campaign not completed: {campaign}"
        await asyncio.sleep(1.0)


async def test_campaign_calls_each_row_as_configured_through_a_control_plane_crash(
    sip_stack: LocalStack, amd_llm: str, tmp_path: Path
) -> None:
    routes = callees(tmp_path)
    assert sip_stack.options.sip_outbound_address is not None
    uas_port = int(sip_stack.options.sip_outbound_address.rsplit(":", 1)[1])
    agent = {
        "name": "Campaign caller",
        "instructions": "You remind {name} of tomorrow's appointment, in one short sentence.",
        "greeting": "Hello {name}, this is the clinic calling.",
        "llm": {"provider": "openai", "model": "scripted", "options": {"base_url": amd_llm}},
        "voicemail": {"detect": True, "on_machine": "hang_up"},
    }
    lines = "".join(f"{n},Row {i},UTC\n" for i, n in enumerate(routes, 1))
    csv = "phone_number,name,timezone\n" + lines
    receiver = RtpReceiver()
    sipp = run_sipp(
        tmp_path / "callees",
        callee_router({n: callee for n, (callee, _, _) in routes.items()}),
        remote=None,
        local_port=uas_port,
        rtp_port=receiver.port,
        timeout_s=400,
        calls=None,
    )
    control_plane = sip_stack.process("control-plane")
    try:
        async with httpx.AsyncClient(
            base_url=sip_stack.control_plane_url, headers=sip_stack.api_headers, timeout=30
        ) as http:
            resp = await http.post("/api/agents", json=agent)
            assert resp.status_code == 201, resp.text
            agent_id = resp.json()["id"]
            body = {
                "name": "Appointments",
                "agent_id": agent_id,
                "csv": csv,
                "concurrency": 2,
                "max_attempts": 2,
                "retry_on": ["busy", "no-answer"],
                "retry_delay_s": RETRY_DELAY_S,
                **calling_window(),
            }
            resp = await http.post("/api/campaigns", json=body)
            assert resp.status_code == 201, resp.text
            campaign_id = resp.json()["id"]

            # mid-campaign, while the first person is on the line and the next number rings:
            # the control plane dies
            await wait_for_calls_under_way(sipp, talking="+14155550101", ringing="+14155550103")
            killed_at = time.time()
            control_plane.signal(signal.SIGKILL)
            await asyncio.to_thread(control_plane.restart_now)

            campaign = await wait_for_campaign(http, campaign_id, timeout=240)
            rows = (await http.get(f"/api/campaigns/{campaign_id}/rows")).json()["items"]
            records = (await http.get("/api/calls", params={"agent_id": agent_id})).json()
    finally:
        sipp.stop()
        receiver.close()

    dialogs = sipp.dialogs()
    in_call_at_kill = [d for d in dialogs if d.started_at < killed_at < d.ended_at]
    got = {r["number"]: (r["outcome"], r["attempts"], len(r["calls"])) for r in rows}
    want = {n: (outcome, calls, calls) for n, (_, outcome, calls) in routes.items()}
    assert got == want, rows
    # what the callees received: each number called exactly as often, never more than 2 at once;
    # a dial the dying control plane took down with it (livekit cancels it) is placed again
    cancelled = [d for d in in_call_at_kill if d.final_status != 200]
    assert [d.number for d in cancelled] == ["+14155550103"], cancelled
    assert [d.final_status for d in in_call_at_kill if d not in cancelled] == [200]
    received = {n: sum(d.number == n for d in dialogs if d not in cancelled) for n in routes}
    assert received == {n: calls for n, (_, _, calls) in routes.items()}, received
    assert most_at_once(dialogs) == 2, [(d.number, d.started_at, d.ended_at) for d in dialogs]
    for n in ("+14155550102", "+14155550105"):  # a busy line is tried again after the delay
        first, second = (d for d in dialogs if d.number == n)
        assert first.final_status == second.final_status == 486
        assert second.started_at - first.ended_at >= RETRY_DELAY_S - 0.1
    assert campaign["progress"]["calls"] == sum(received.values()), campaign
    # the call list has every call the callees received, each over, the cancelled one failed
    assert records["count"] == len(dialogs), records
    over = ("completed", "failed", "abandoned")
    unsettled = [
        c for c in records["items"] if c["outcome"] == "ringing" or c["status"] not in over
    ]
    assert not unsettled, unsettled
    failed = [c for c in records["items"] if c["outcome"] == "failed"]
    assert [c["callee"] for c in failed] == ["+14155550103"], failed
    assert "control plane" in failed[0]["failure_reason"], failed
