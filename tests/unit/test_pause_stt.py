"""Offline STT finals at each pause: the speech before a pause is transcribed while the VAD is
still deciding whether the caller is done, and nothing is transcribed twice."""

from __future__ import annotations

from typing import Never

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import LanguageCode, stt, utils
from livekit.agents.types import NOT_GIVEN, APIConnectOptions, NotGivenOr
from livekit.plugins import silero

from testkit.audio import SAMPLE_RATE, synthesize
from worker.providers.pause_stt import PauseEndpointingAdapter

pytestmark = pytest.mark.unit


class SegmentRecorder(stt.STT[Never]):
    """A non-streaming STT that names each segment it is given and keeps its length."""

    def __init__(self) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self.seconds: list[float] = []

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        frame = utils.merge_frames(buffer)
        self.seconds.append(frame.samples_per_channel / frame.sample_rate)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[
                stt.SpeechData(language=LanguageCode("en"), text=f"segment {len(self.seconds)}")
            ],
        )


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(SAMPLE_RATE * seconds), dtype=np.int16)


async def events_for(pcm: np.ndarray, recorder: SegmentRecorder) -> list[stt.SpeechEvent]:
    adapter = PauseEndpointingAdapter(stt=recorder, vad=silero.VAD.load(), pause=0.2)
    stream = adapter.stream()
    for i in range(0, len(pcm), 480):
        chunk = pcm[i : i + 480]
        stream.push_frame(rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, len(chunk)))
    stream.end_input()
    return [ev async for ev in stream]


async def test_each_pause_ends_a_segment_before_the_vad_ends_the_speech() -> None:
    first, second = synthesize("When is the museum open?"), synthesize("And on Sunday?")
    recorder = SegmentRecorder()
    pcm = np.concatenate([first, silence(0.4), second, silence(1.5)])

    events = await events_for(pcm, recorder)

    kinds = [e.type for e in events]
    finals = [
        e.alternatives[0].text for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    ]
    assert finals == ["segment 1", "segment 2"], kinds
    # the first segment was transcribed at the 0.4 s pause, not after the end of speech
    assert kinds.index(stt.SpeechEventType.FINAL_TRANSCRIPT) < kinds.index(
        stt.SpeechEventType.END_OF_SPEECH
    ), kinds
    # both sentences were heard, each once: the segments hold the speech and no more than
    # the padding and pauses around it
    speech_s = (len(first) + len(second)) / SAMPLE_RATE
    assert speech_s < sum(recorder.seconds) < speech_s + 1.5, recorder.seconds
    assert recorder.seconds[0] >= len(first) / SAMPLE_RATE


async def test_an_utterance_without_pauses_is_one_segment() -> None:
    recorder = SegmentRecorder()
    events = await events_for(
        np.concatenate([synthesize("Is the museum open on Sunday?"), silence(1.5)]), recorder
    )
    finals = [e for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT]
    assert len(finals) == 1 and len(recorder.seconds) == 1
