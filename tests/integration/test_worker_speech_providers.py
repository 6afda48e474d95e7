"""The real Deepgram, OpenAI, ElevenLabs and Async.ai plugins (and OpenAI's pointed at a
Kokoro server), chosen by agent config alone, talk to a local server speaking each provider's
streaming protocol — and real speech goes through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import stt, utils

from stimm.catalog import TTS
from stimm.schema import AgentConfig
from testkit.audio import rms, synthesize, transcribe
from testkit.fakes.speech_server import SPEECH_RMS, FakeSpeechServer
from worker.providers import build_stt, build_tts

pytestmark = pytest.mark.integration

QUESTION = "When is the museum open?"
ANSWER = "The museum opens at nine in the morning."


@pytest.fixture
async def speech() -> AsyncIterator[FakeSpeechServer]:
    utils.http_context._new_session_ctx()
    async with FakeSpeechServer() as server:
        yield server
    await utils.http_context._close_http_ctx()


def agent(**roles: Any) -> AgentConfig:
    """An agent config as the control plane stores it; only the provider lists vary."""
    return AgentConfig.model_validate(
        {"name": "Guide", "instructions": "Help.", "llm": {"provider": "openai"}, **roles}
    )


def frames(pcm: np.ndarray[Any, Any], rate: int = 48_000) -> list[rtc.AudioFrame]:
    step = rate // 50  # 20 ms, like a microphone track
    return [
        rtc.AudioFrame(pcm[i : i + step].tobytes(), rate, 1, len(pcm[i : i + step]))
        for i in range(0, len(pcm) - step + 1, step)
    ]


def heard(audio: list[rtc.AudioFrame]) -> str:
    assert audio, "no audio came back"
    combined = rtc.combine_audio_frames(audio)
    pcm = np.frombuffer(combined.data, dtype=np.int16)
    return transcribe(pcm, combined.sample_rate)


def loudness(audio: list[rtc.AudioFrame]) -> float:
    assert audio, "no audio came back"
    return rms(np.frombuffer(rtc.combine_audio_frames(audio).data, dtype=np.int16))


async def test_deepgram_stt_streams_interim_and_final_transcripts(
    speech: FakeSpeechServer,
) -> None:
    config = agent(stt={"provider": "deepgram", "options": {"base_url": f"{speech.url}/v1/listen"}})
    engine = build_stt(config.stt[0], language=config.language)
    stream = engine.stream()
    silence = np.zeros(48_000, dtype=np.int16)
    for frame in frames(np.concatenate([synthesize(QUESTION), silence])):
        stream.push_frame(frame)
    stream.end_input()

    events: list[stt.SpeechEvent] = [ev async for ev in stream]
    await engine.aclose()

    kinds = [ev.type for ev in events]
    finals = [
        ev.alternatives[0].text.lower()
        for ev in events
        if ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    ]
    assert stt.SpeechEventType.INTERIM_TRANSCRIPT in kinds, kinds
    assert kinds.index(stt.SpeechEventType.INTERIM_TRANSCRIPT) < kinds.index(
        stt.SpeechEventType.FINAL_TRANSCRIPT
    )
    assert stt.SpeechEventType.END_OF_SPEECH in kinds
    assert any("museum" in f for f in finals), finals
    (req,) = speech.endpoints("deepgram.listen.ws")
    assert req["interim_results"] == "true" and req["encoding"] == "linear16"


async def test_openai_stt_transcribes_an_utterance(speech: FakeSpeechServer) -> None:
    config = agent(stt={"provider": "openai", "options": {"base_url": f"{speech.url}/v1"}})
    engine = build_stt(config.stt[0], language=config.language)
    event = await engine.recognize(frames(synthesize(QUESTION)))
    await engine.aclose()
    assert "museum" in event.alternatives[0].text.lower()
    assert speech.endpoints("openai.transcriptions")


@pytest.mark.parametrize("model", ["gpt-4o-mini-tts", "tts-1"])  # SSE and raw audio streams
async def test_openai_tts_speaks_the_text(speech: FakeSpeechServer, model: str) -> None:
    config = agent(
        tts={"provider": "openai", "model": model, "options": {"base_url": f"{speech.url}/v1"}}
    )
    engine = build_tts(config.tts[0], voice=config.voice, language=config.language)
    audio = [ev.frame async for ev in engine.synthesize(ANSWER)]
    await engine.aclose()
    assert "in the morning" in heard(audio)
    (req,) = speech.endpoints("openai.speech")
    assert req["response_format"] == "pcm"
    assert req["auth"] == "Bearer no-key"  # a custom base URL never gets the real key


@pytest.mark.parametrize(("provider", "path"), [("elevenlabs", "/v1"), ("deepgram", "/v1/speak")])
async def test_streaming_tts_speaks_text_pushed_word_by_word(
    speech: FakeSpeechServer, provider: str, path: str
) -> None:
    config = agent(tts={"provider": provider, "options": {"base_url": f"{speech.url}{path}"}})
    engine = build_tts(config.tts[0], voice=config.voice, language=config.language)
    assert engine.capabilities.streaming
    stream = engine.stream()
    for word in ANSWER.split():  # as an LLM streams it
        stream.push_text(word + " ")
    stream.flush()
    stream.end_input()
    audio = [ev.frame async for ev in stream]
    await stream.aclose()
    await engine.aclose()
    assert "in the morning" in heard(audio)


async def test_deepgram_tts_single_request(speech: FakeSpeechServer) -> None:
    config = agent(tts={"provider": "deepgram", "options": {"base_url": f"{speech.url}/v1/speak"}})
    engine = build_tts(config.tts[0], voice=config.voice, language=config.language)
    audio = [ev.frame async for ev in engine.synthesize(ANSWER)]
    await engine.aclose()
    assert "in the morning" in heard(audio)


ASYNC_VOICE = "9a5c6b1e-0000-4000-8000-00000000a11c"


@pytest.mark.parametrize(
    ("options", "key_sent"),
    [
        ({"api_key": "async-key-for-the-proxy"}, "async-key-for-the-proxy"),
        ({}, "no-key"),  # the hosted ASYNCAI_API_KEY never goes to another server
    ],
)
async def test_asyncai_tts_streams_speech_over_its_websocket(
    speech: FakeSpeechServer,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, str],
    key_sent: str,
) -> None:
    monkeypatch.setenv("ASYNCAI_API_KEY", "hosted-async-key")
    config = agent(
        tts={"provider": "asyncai", "options": {"base_url": speech.url, **options}},
        voice=ASYNC_VOICE,
        language="en-US",
    )
    engine = build_tts(config.tts[0], voice=config.voice, language=config.language)
    assert engine.capabilities.streaming
    stream = engine.stream()
    for word in ANSWER.split():  # as an LLM streams it
        stream.push_text(word + " ")
    stream.flush()
    stream.end_input()
    audio = [ev.frame async for ev in stream]
    await stream.aclose()
    await engine.aclose()

    assert {f.sample_rate for f in audio} == {32_000}  # the plugin's default output rate
    assert loudness(audio) > SPEECH_RMS
    assert "in the morning" in heard(audio)
    (req,) = speech.endpoints("asyncai.ws")
    assert req["api_key"] == key_sent and req["version"] == "v1"
    assert req["init"] == {
        "model_id": TTS["asyncai"].default_model,
        "voice": {"mode": "id", "id": ASYNC_VOICE},
        "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 32_000},
        "language": "en",
    }
    assert " ".join(t.strip() for t in req["transcripts"] if t.strip()) == ANSWER


async def test_kokoro_tts_speaks_through_its_openai_compatible_server(
    speech: FakeSpeechServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-hosted-openai-key")
    config = agent(tts={"provider": "kokoro", "options": {"base_url": f"{speech.url}/kokoro/v1"}})
    engine = build_tts(config.tts[0], voice=config.voice, language=config.language)
    audio = [ev.frame async for ev in engine.synthesize(ANSWER)]
    await engine.aclose()

    assert {f.sample_rate for f in audio} == {24_000}
    assert loudness(audio) > SPEECH_RMS
    assert "in the morning" in heard(audio)
    (req,) = speech.endpoints("kokoro.speech")
    assert (req["input"], req["model"], req["voice"]) == (ANSWER, "kokoro", "af_heart")
    assert req["response_format"] == "pcm"
    assert req["auth"] == "Bearer no-key"  # never the OpenAI key from the environment
