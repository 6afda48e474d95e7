"""The voicemail beep detector and campaign placeholders, without servers."""

from __future__ import annotations

import numpy as np
import pytest

from stimm.placeholders import fill, placeholders
from testkit.audio import synthesize
from worker.voicemail import BEEP_MIN_S, BEEP_RATE, is_tone

pytestmark = pytest.mark.unit


def frames(pcm: np.ndarray) -> list[np.ndarray]:
    n = BEEP_RATE // 50
    return [pcm[i : i + n] for i in range(0, len(pcm) - n + 1, n)]


def test_a_beep_is_a_tone_and_speech_or_silence_is_not() -> None:
    t = np.arange(BEEP_RATE // 2) / BEEP_RATE
    beep = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    assert all(is_tone(f) for f in frames(beep))
    greeting = "Hi, you have reached Sam. I cannot take your call. Please leave a message."
    flags = [is_tone(f) for f in frames(synthesize(greeting, BEEP_RATE))]
    longest = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    assert longest * 0.02 < BEEP_MIN_S, "speech would be taken for the beep"
    assert not is_tone(np.zeros(160, dtype=np.int16))


def test_placeholders_are_filled_and_other_braces_kept() -> None:
    text = 'Hello {first_name}, reply as {"ok": true} about {order}.'
    assert placeholders(text) == {"first_name", "order"}
    assert fill(text, {"first_name": "Ada"}) == 'Hello Ada, reply as {"ok": true} about {order}.'
