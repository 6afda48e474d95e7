"""The end-of-turn model as the worker configures it, fed the way livekit feeds it.

livekit's ``AudioRecognition`` pushes every caller frame (48 kHz, 10 ms) into the detector's
stream and asks for one prediction once the VAD has heard 200 ms of silence; below the
language's threshold the turn waits ``max_endpointing_delay``, otherwise ``min_endpointing_delay``.

The model reads prosody only. Piper's questions followed by digital silence mostly score under
the English threshold, which is why the e2e and bench questions wait ``max_endpointing_delay``
(bench/turn_detector.py); statements it reads correctly, and those are what is tested here.
"""

from __future__ import annotations

import asyncio
import statistics

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import LanguageCode
from livekit.agents.inference import TurnDetector
from livekit.agents.inference.eot.base import MIN_SILENCE_DURATION_MS
from numpy.typing import NDArray

from testkit.audio import synthesize
from worker.turn_taking import load_turn_detector

pytestmark = pytest.mark.unit

RATE = 48_000
FRAME = RATE // 100
SYNTHESES = 5
"""Piper samples its prosody, so one sentence scores a little differently each time."""


@pytest.fixture(scope="module")
def detector() -> TurnDetector:
    loaded = load_turn_detector()
    assert loaded is not None, "the offline end-of-turn model should load on this machine"
    return loaded


@pytest.fixture(scope="module")
def threshold(detector: TurnDetector) -> float:
    value = asyncio.run(detector.unlikely_threshold(LanguageCode("en")))
    assert value is not None, "English has a threshold for the offline model"
    return value


def _spoken(text: str) -> NDArray[np.int16]:
    """``text`` as the caller says it, then the silence after which livekit asks the model."""
    speech = synthesize(text, RATE)
    speech = speech[: np.nonzero(np.abs(speech) > 300)[0][-1] + 1]
    silence = np.zeros(MIN_SILENCE_DURATION_MS * RATE // 1000, dtype=np.int16)
    return np.concatenate([speech, silence])


async def _end_of_turn_probability(detector: TurnDetector, pcm: NDArray[np.int16]) -> float:
    stream = detector.stream()
    try:
        for i in range(0, len(pcm) - FRAME + 1, FRAME):
            stream.push_audio(rtc.AudioFrame(pcm[i : i + FRAME].tobytes(), RATE, 1, FRAME))
            await asyncio.sleep(0)  # frames arrive one by one; the stream drains between them
        await asyncio.sleep(0.05)
        event = await asyncio.wait_for(stream.predict(), timeout=stream.prediction_timeout * 5)
        return event.end_of_turn_probability
    finally:
        await stream.aclose()


async def _median_probability(detector: TurnDetector, text: str) -> float:
    return statistics.median(
        [await _end_of_turn_probability(detector, _spoken(text)) for _ in range(SYNTHESES)]
    )


async def test_a_finished_sentence_ends_the_turn(detector: TurnDetector, threshold: float) -> None:
    """The caller is answered after ``min_endpointing_delay``."""
    p = await _median_probability(detector, "Thank you, that is all I needed.")
    assert p >= threshold, f"P(end of turn) {p:.3f} < {threshold}: the turn would wait max_delay"


async def test_a_sentence_broken_off_keeps_the_turn_open(
    detector: TurnDetector, threshold: float
) -> None:
    """A caller who pauses mid-sentence is not answered after ``min_endpointing_delay``."""
    p = await _median_probability(detector, "Please cancel my appointment for,")
    assert p < threshold, f"P(end of turn) {p:.3f} >= {threshold}: the agent would cut in"
