"""The worker's inference process: a crash costs the requests in flight, not the next ones."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from livekit.agents.inference_runner import _InferenceRunner

from worker.inference import InferenceUnavailable, SharedInference, pack, unpack

pytestmark = pytest.mark.unit


class Echo(_InferenceRunner):
    """Answers with what it was sent; ``b"hang"`` stays in flight for a minute."""

    INFERENCE_METHOD = "test_echo"

    def initialize(self) -> None:
        pass

    def run(self, data: bytes) -> bytes | None:
        if data == b"hang":
            time.sleep(60)
        return data


def test_a_request_keeps_its_header_and_audio() -> None:
    header, body = unpack(pack({"text": "Hello, world", "rate": 16_000}, b"\x00\x01\xff"))
    assert header == {"text": "Hello, world", "rate": 16_000}
    assert body == b"\x00\x01\xff"


async def test_a_crash_fails_the_request_in_flight_and_the_next_one_is_answered() -> None:
    shared = await SharedInference.launch({Echo.INFERENCE_METHOD: Echo})
    try:
        assert await shared.do_inference("test_echo", b"first") == b"first"
        crashed = shared.pid
        assert crashed is not None
        in_flight = asyncio.create_task(shared.do_inference("test_echo", b"hang"))
        await asyncio.sleep(0.5)
        os.kill(crashed, signal.SIGKILL)

        with pytest.raises(InferenceUnavailable, match="died"):
            await asyncio.wait_for(in_flight, 10)
        # asked while the new process starts: held until it is ready, then answered
        assert await asyncio.wait_for(shared.do_inference("test_echo", b"next"), 60) == b"next"
        assert shared.pid not in (None, crashed)
        assert shared.restarts == 1
        assert shared.is_alive()
    finally:
        await shared.aclose()


def test_a_pool_of_hosted_speech_agents_can_leave_the_offline_models_unloaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from worker.providers import local_stt, local_tts

    monkeypatch.setattr(local_stt, "_models", {})
    monkeypatch.setattr(local_tts, "_voices", {})
    monkeypatch.setenv("STIMM_WORKER_PRELOAD_MODELS", "0")
    local_stt.WhisperRunner().initialize()
    local_tts.PiperRunner().initialize()
    assert local_stt._models == {} and local_tts._voices == {}

    monkeypatch.setenv("STIMM_WORKER_PRELOAD_MODELS", "maybe")
    with pytest.raises(ValueError, match="STIMM_WORKER_PRELOAD_MODELS must be 1 or 0"):
        local_stt.WhisperRunner().initialize()
