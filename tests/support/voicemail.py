"""What an answering machine sounds like on the phone (a greeting, then a beep), and the rules a
scripted LLM follows to classify callees for livekit's answering-machine detection."""

from __future__ import annotations

from typing import Any

import numpy as np

from testkit.audio import synthesize
from testkit.rtp import RATE

AMD_PROMPT_WORDS = "classify the call greeting"  # livekit's AMD system prompt
MACHINE = (
    "Hi, you have reached Sam. I cannot take your call. Please leave a message after the tone."
)
BEEP_S = 0.6
GAP_S = 0.7

AMD_RULES: list[Any] = [
    # a greeting that mentions a message is a machine's; anything else a person's
    (
        "message",
        {"tool": "save_prediction", "arguments": {"label": "machine-vm"}},
        AMD_PROMPT_WORDS,
    ),
    ("", {"tool": "save_prediction", "arguments": {"label": "human"}}, AMD_PROMPT_WORDS),
]


def machine_audio() -> np.ndarray[Any, np.dtype[np.int16]]:
    """A voicemail greeting, a short gap and a 1 kHz beep, at 8 kHz."""
    t = np.arange(int(BEEP_S * RATE)) / RATE
    beep = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    gap = np.zeros(int(GAP_S * RATE), dtype=np.int16)
    return np.concatenate([synthesize(MACHINE, RATE), gap, beep])
