"""The offline engines: Piper speaks, Whisper understands what Piper said."""

from __future__ import annotations

import pytest
from livekit import rtc
from livekit.agents import stt

from worker.providers import PiperTTS, WhisperSTT
from worker.providers.local_stt import SHORT_SPEECH_MAX_S

pytestmark = pytest.mark.unit

SENTENCE = "Hello, I would like to book a table for two tonight."


@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    tts = PiperTTS()
    tts.load()
    return tts


@pytest.fixture(scope="module")
def whisper() -> WhisperSTT:
    recognizer = WhisperSTT(language="en")
    recognizer.load()
    return recognizer


async def _synthesize(tts: PiperTTS, text: str) -> list[rtc.AudioFrame]:
    async with tts.synthesize(text) as stream:
        return [event.frame async for event in stream]


async def test_round_trip_piper_to_whisper(piper: PiperTTS, whisper: WhisperSTT) -> None:
    frames = await _synthesize(piper, SENTENCE)

    assert frames, "Piper produced no audio"
    assert {f.sample_rate for f in frames} == {22050}
    assert {f.num_channels for f in frames} == {1}
    duration = sum(f.duration for f in frames)
    assert 1.0 <= duration <= 6.0, duration

    event = await whisper.recognize(frames)

    assert event.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    assert "book a table" in event.alternatives[0].text.lower()
    assert event.alternatives[0].language == "en"


async def test_speech_longer_than_the_short_window_is_transcribed_whole(
    piper: PiperTTS, whisper: WhisperSTT
) -> None:
    # Past SHORT_SPEECH_MAX_S the segment goes through Whisper's full 30-s window.
    frames = await _synthesize(
        piper, f"{SENTENCE} Then we would like to see the planetarium show on Sunday afternoon."
    )
    assert sum(f.duration for f in frames) > SHORT_SPEECH_MAX_S

    text = (await whisper.recognize(frames)).alternatives[0].text.lower()

    # the first sentence and the end of the second: nothing was cut
    assert "book a table" in text
    assert "planetar" in text and "sunday afternoon" in text


async def test_round_trip_through_48khz_resampling(piper: PiperTTS, whisper: WhisperSTT) -> None:
    # Audio from a LiveKit room arrives at 48 kHz; the recognizer must resample it.
    frames = await _synthesize(piper, SENTENCE)
    resampler = rtc.AudioResampler(22050, 48000, num_channels=1)
    resampled = [out for f in frames for out in resampler.push(f)] + resampler.flush()

    event = await whisper.recognize(resampled)

    assert "book a table" in event.alternatives[0].text.lower()


async def test_every_sentence_is_spoken(piper: PiperTTS) -> None:
    one = sum(f.duration for f in await _synthesize(piper, "Good evening."))
    three = sum(
        f.duration
        for f in await _synthesize(piper, "Good evening. Your table is ready. Please follow me.")
    )
    assert three > 2 * one


async def test_speed_shortens_audio() -> None:
    normal = sum(f.duration for f in await _synthesize(PiperTTS(), SENTENCE))
    fast = sum(f.duration for f in await _synthesize(PiperTTS(speed=1.5), SENTENCE))
    assert fast < 0.85 * normal


async def test_silence_gives_empty_transcript(whisper: WhisperSTT) -> None:
    silence = rtc.AudioFrame(
        data=b"\x00\x00" * 48000, sample_rate=48000, num_channels=1, samples_per_channel=48000
    )

    event = await whisper.recognize(silence)

    assert event.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    assert len(event.alternatives[0].text.strip()) <= 5


async def test_empty_buffer_gives_empty_transcript(whisper: WhisperSTT) -> None:
    event = await whisper.recognize([])

    assert event.alternatives[0].text == ""


def test_capabilities_are_non_streaming() -> None:
    assert WhisperSTT().capabilities.streaming is False
    assert WhisperSTT().capabilities.interim_results is False
    assert PiperTTS().capabilities.streaming is False
    assert PiperTTS().sample_rate == 22050
    assert PiperTTS().num_channels == 1


def test_unknown_voice_is_rejected() -> None:
    with pytest.raises(ValueError, match="en_US-nobody-low"):
        PiperTTS(voice="en_US-nobody-low")
