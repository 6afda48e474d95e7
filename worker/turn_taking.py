"""Turn-taking from an agent's config: end-of-turn detection, endpointing, interruptions.

The end-of-turn model is livekit's offline ``v1-mini`` audio detector (weights compiled into
``livekit-local-inference``). It is pinned: the unpinned default picks a cloud model in dev
mode. Interruptions use ``mode="vad"`` for the same reason (``"adaptive"`` calls a cloud model).

The model hears only the last 1.2 s of audio, 200 ms into the silence: prosody and the noise
floor after the speech, no transcript. Below the language's threshold (0.36 for English) the turn
waits ``max_endpointing_delay``. Piper's questions followed by digital silence, which the e2e
caller speaks, mostly score under it; bench/turn_detector.py has the figures.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
from livekit.agents.inference import TurnDetector
from livekit.agents.voice.turn import TurnHandlingOptions

from stimm.schema import TurnTaking

logger = logging.getLogger("stimm.worker")

TurnDetection = Literal["model", "vad"]
"""Which end-of-turn strategy a session actually runs."""


def load_turn_detector() -> TurnDetector | None:
    """The offline end-of-turn model, or ``None`` when it cannot run on this machine.

    Runs one prediction so a missing or broken native library shows here, at process start,
    rather than in the middle of a call.
    """
    try:
        from livekit.local_inference import EOT

        detector = TurnDetector(version="v1-mini")
        EOT().predict(np.zeros(1_600, dtype=np.int16))
    except Exception as e:  # any failure means: fall back to VAD endpointing
        logger.warning("end-of-turn model unavailable, using VAD endpointing: %s", e)
        return None
    return detector


def turn_handling(
    options: TurnTaking, detector: TurnDetector | None
) -> tuple[TurnHandlingOptions, TurnDetection]:
    """livekit ``turn_handling`` options for an agent, and which detection they use.

    Args:
        options: The agent's stored turn-taking settings.
        detector: The loaded end-of-turn model, if this process has one.

    Returns:
        The options for ``AgentSession(turn_handling=...)`` and ``"model"`` or ``"vad"``.
    """
    use_model = options.turn_detection in ("auto", "model") and detector is not None
    if options.turn_detection == "model" and detector is None:
        logger.warning("agent asks for the end-of-turn model, which is unavailable: using VAD")
    turn_detection: Any = detector if use_model else "vad"
    handling: TurnHandlingOptions = {
        "turn_detection": turn_detection,
        "endpointing": {
            "min_delay": options.min_endpointing_delay,
            "max_delay": max(options.max_endpointing_delay, options.min_endpointing_delay),
        },
        "interruption": {
            "enabled": options.allow_interruptions,
            "mode": "vad",
            "min_duration": options.interruption_min_duration,
        },
        "preemptive_generation": {
            "enabled": options.preemptive_generation,
            "preemptive_tts": options.preemptive_tts,
        },
    }
    return handling, "model" if use_model else "vad"
