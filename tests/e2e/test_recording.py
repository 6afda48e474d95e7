"""A recorded call through the real stack: the worker's stereo recording reaches the control
plane's store, lasts as long as the call, holds the caller's question on the left and the
agent's answer on the right (transcribed offline with Whisper), its turns' times point into it,
and the console plays it in Chromium: clicking a turn seeks there, and it plays to the end."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.async_api import Page, expect

from stimm.stack import LocalStack
from testkit.audio import SAMPLE_RATE, synthesize, transcribe
from testkit.caller import SPEECH_RMS, Caller
from tests.e2e.console import shot, sign_in
from tests.e2e.test_roundtrip import QUESTION, agent_body, wait_for_session
from tests.support.recording import read_ogg

pytestmark = pytest.mark.e2e

expect.set_options(timeout=20_000)


async def wait_for_recording(
    http: httpx.AsyncClient, session_id: str, timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        resp = await http.get(f"/api/sessions/{session_id}/recording")
        if resp.status_code == 200 or time.monotonic() > deadline:
            assert resp.status_code == 200, resp.text
            body: dict[str, Any] = resp.json()
            return body
        await asyncio.sleep(1.0)


def first_speech_s(pcm: np.ndarray[Any, np.dtype[np.int16]]) -> float:
    """Seconds into ``pcm`` of its first 20 ms window louder than speech."""
    window = SAMPLE_RATE // 50
    frames = pcm[: len(pcm) // window * window].reshape(-1, window).astype(np.float64)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > SPEECH_RMS)
    assert len(loud), "the channel is silent"
    return float(loud[0] * window / SAMPLE_RATE)


def seconds_between(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


async def test_a_recorded_call_holds_both_sides_and_plays_in_the_console(
    stack: LocalStack, fake_llm_url: str, page: Page, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=30
    ) as http:
        body = agent_body(fake_llm_url, recording={"enabled": True, "retention_days": 1})
        agent = (await http.post("/api/agents", json=body)).json()
        sess = (await http.post("/api/sessions", json={"agent_id": agent["id"]})).json()
        caller = Caller()
        joined = time.monotonic()
        await caller.join(sess["livekit_url"], sess["token"])
        try:
            await caller.next_utterance(timeout=90)  # the greeting
            await caller.say(synthesize(QUESTION))
            await caller.next_utterance(timeout=60)  # the answer
        finally:
            await caller.leave()
        call_s = time.monotonic() - joined

        record = await wait_for_session(http, sess["session_id"], {"completed", "failed"})
        assert record["status"] == "completed", record
        rec = await wait_for_recording(http, sess["session_id"])
        # the signed URL is the credential: no API key
        audio = await http.get(rec["url"], headers={"Authorization": ""})
        assert audio.status_code == 200, audio.text
    path = tmp_path / "call.ogg"
    path.write_bytes(audio.content)

    caller_channel, agent_channel = read_ogg(path)
    duration = len(caller_channel) / SAMPLE_RATE
    assert rec["duration_s"] == pytest.approx(duration, abs=0.2)
    assert abs(duration - call_s) < 3.0, (duration, call_s)
    heard_caller, heard_agent = transcribe(caller_channel), transcribe(agent_channel)
    assert "when" in heard_caller and "museum" in heard_caller, heard_caller
    assert "sunday" not in heard_caller and "help" not in heard_caller, heard_caller
    assert "sunday afternoon" in heard_agent and "how can i help" in heard_agent, heard_agent
    assert "when is" not in heard_agent, heard_agent

    # the transcript's times point into the recording: what seeking by turn relies on
    user_turn = next(t for t in record["turns"] if t["role"] == "user")
    answer = next(t for t in record["turns"] if "afternoon" in t["text"].lower())
    user_offset = seconds_between(user_turn["started_at"], rec["started_at"])
    assert user_offset == pytest.approx(first_speech_s(caller_channel), abs=1.0)
    answer_offset = seconds_between(answer["started_at"], rec["started_at"])
    later_agent = agent_channel[int((user_offset + 0.5) * SAMPLE_RATE) :]
    assert answer_offset == pytest.approx(user_offset + 0.5 + first_speech_s(later_agent), abs=1.0)

    # the console plays it: a click on the answer seeks there, highlights it, plays to the end
    await sign_in(page, stack.api_key)
    await expect(page.get_by_role("heading", name="Agents", exact=True)).to_be_visible()
    await page.goto(f"/sessions/{sess['session_id']}")
    player = page.get_by_test_id("recording-player")
    await expect(player).to_have_attribute("data-state", "paused")
    await expect(page.get_by_test_id("recording-time")).to_contain_text(
        f"/ 0:{int(rec['duration_s']):02d}"
    )
    bubble = page.get_by_test_id("session-transcript").locator(
        '[data-speaker="assistant"]', has_text="Sunday afternoon"
    )
    await bubble.click()
    await expect(bubble).to_have_attribute("aria-current", "true")
    await expect(player).to_have_attribute("data-state", "playing")
    at = float(await player.get_attribute("data-time") or "nan")
    assert answer_offset - 0.1 <= at <= answer_offset + 2.0, (at, answer_offset)
    await shot(page, "recording-playing")
    await expect(player).to_have_attribute("data-state", "ended", timeout=60_000)
    await expect(bubble).not_to_have_attribute("aria-current", "true")

    # the agent's page shows its recording policy, and turns it off
    await page.goto(f"/agents/{agent['id']}")
    record_sessions = page.get_by_label("Record sessions")
    await expect(record_sessions).to_be_checked()
    await expect(page.get_by_label("Keep recordings for (days)")).to_have_value("1")
    await record_sessions.uncheck()
    await expect(page.get_by_label("Keep recordings for (days)")).to_be_disabled()
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_text("Saved", exact=True)).to_be_visible()
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers
    ) as http:
        saved = (await http.get(f"/api/agents/{agent['id']}")).json()
    assert saved["recording"] == {"enabled": False, "retention_days": 1}
