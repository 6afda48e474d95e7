"""What the offline end-of-turn model makes of our test speech, and what it costs per turn.

Two measurements, both on Piper speech (``testkit.audio.synthesize``, the voice of the
e2e caller and of bench/roundtrip.py):

1. ``probabilities``: the model's P(end of turn) for complete questions, complete statements
   and unfinished sentences (ending on a comma), each synthesized several times, fed the way
   livekit's local transport feeds it: 48 kHz caller audio resampled to 16 kHz by
   ``rtc.AudioResampler`` (QUICK), the last 1.2 s (``EOT_MAX_SAMPLES``) ending 200 ms into the
   silence (``MIN_SILENCE_DURATION_MS``, when ``AudioRecognition`` asks for a prediction) or
   100 ms later. Once with digital silence after the speech (what the test caller sends), once
   with a -60 dBFS noise floor under the whole signal (a quiet real microphone). Below
   livekit's threshold the session waits ``max_endpointing_delay``.
2. ``session``: a real ``AgentSession`` (no room) with Silero VAD, the offline Whisper STT and
   ``worker.turn_taking.turn_handling`` at the schema defaults, hearing questions and
   statements paced in real time; the delay from the end of each sentence to the committed
   user turn, for the model with and without a noise floor, and for VAD endpointing.

    .venv/bin/python bench/turn_detector.py [--skip-session]

Prints the figures and writes bench/results/turn_detector.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livekit import rtc  # noqa: E402
from livekit.agents import Agent, AgentSession, LanguageCode  # noqa: E402
from livekit.agents.inference.eot.base import MIN_SILENCE_DURATION_MS  # noqa: E402
from livekit.agents.voice import io  # noqa: E402
from livekit.local_inference import EOT, EOT_MAX_SAMPLES  # noqa: E402
from livekit.plugins import silero  # noqa: E402

from bench.stats import pct  # noqa: E402
from stimm.schema import TurnTaking  # noqa: E402
from testkit.audio import synthesize  # noqa: E402
from worker.providers import WhisperSTT  # noqa: E402
from worker.turn_taking import load_turn_detector, turn_handling  # noqa: E402

RATE = 48_000
MODEL_RATE = 16_000
FRAME = RATE // 100
NOISE_FLOOR_RMS = 32.0
"""-60 dBFS: a quiet microphone; real capture is never exactly zero."""

QUESTIONS = [
    "When is the museum open?",
    "Is the museum open on Sunday?",
    "What time does the museum open on Sunday?",
    "Can you tell me the opening hours of the library?",
    "How much does a ticket cost for children?",
    "Where can I park my car near the station?",
]
STATEMENTS = [
    "I would like to book a table for two people tonight.",
    "Please cancel my appointment for tomorrow morning.",
    "Thank you, that is all I needed.",
]
UNFINISHED = [
    "When is the museum,",
    "Is the museum open on,",
    "What time does the museum open on,",
    "Can you tell me the opening hours of the,",
    "How much does a ticket cost for,",
    "Where can I park my car near the,",
    "I would like to book a table for two people and,",
    "Please cancel my appointment for,",
    "Thank you, that is all I, uh,",
]
REPEATS = 5
"""Piper samples its prosody: each synthesis of a sentence sounds a little different."""
SESSION_SENTENCES = [*QUESTIONS[:3], *STATEMENTS[:2]]


def spoken(text: str) -> NDArray[np.int16]:
    """Piper speech at the caller's rate, without Piper's own trailing silence."""
    pcm = synthesize(text, RATE)
    loud = np.nonzero(np.abs(pcm) > 300)[0]
    return pcm[: loud[-1] + 1]


def with_noise(pcm: NDArray[np.int16], rms: float, seed: int) -> NDArray[np.int16]:
    if rms <= 0:
        return pcm
    noise = np.random.default_rng(seed).normal(0.0, rms, len(pcm))
    return np.clip(np.round(pcm + noise), -32768, 32767).astype(np.int16)


def to_model_rate(pcm: NDArray[np.int16]) -> NDArray[np.int16]:
    """48 kHz to 16 kHz in 10 ms frames, with the resampler livekit's detector stream uses."""
    resampler = rtc.AudioResampler(
        input_rate=RATE,
        output_rate=MODEL_RATE,
        num_channels=1,
        quality=rtc.AudioResamplerQuality.QUICK,
    )
    out: list[NDArray[np.int16]] = []
    padded = np.concatenate([pcm, np.zeros((-len(pcm)) % FRAME, dtype=np.int16)])
    for i in range(0, len(padded), FRAME):
        frame = rtc.AudioFrame(padded[i : i + FRAME].tobytes(), RATE, 1, FRAME)
        out += [np.frombuffer(f.data, dtype=np.int16) for f in resampler.push(frame)]
    out += [np.frombuffer(f.data, dtype=np.int16) for f in resampler.flush()]
    return np.concatenate(out)


def probability(eot: EOT, speech: NDArray[np.int16], noise_rms: float, silence_ms: int) -> float:
    """P(end of turn) as livekit asks for it ``silence_ms`` after ``speech`` ends."""
    tail = np.zeros(RATE // 2 + silence_ms * RATE // 1000, dtype=np.int16)
    audio = to_model_rate(with_noise(np.concatenate([speech, tail]), noise_rms, len(speech)))
    end = (len(speech) + silence_ms * RATE // 1000) * MODEL_RATE // RATE
    return float(eot.predict(audio[:end][-EOT_MAX_SAMPLES:]))


def probabilities(threshold: float) -> dict[str, Any]:
    eot = EOT()
    kinds = {"question": QUESTIONS, "statement": STATEMENTS, "unfinished": UNFINISHED}
    speech = {
        kind: {t: [spoken(t) for _ in range(REPEATS)] for t in texts}
        for kind, texts in kinds.items()
    }
    table: dict[str, Any] = {}
    for floor, rms in (("digital_silence", 0.0), ("noise_floor_-60dBFS", NOISE_FLOOR_RMS)):
        for silence_ms in (MIN_SILENCE_DURATION_MS, MIN_SILENCE_DURATION_MS + 100):
            row: dict[str, Any] = {}
            for kind, sentences in speech.items():
                per_sentence = {
                    text: [round(probability(eot, s, rms, silence_ms), 3) for s in pcms]
                    for text, pcms in sentences.items()
                }
                ps = [p for values in per_sentence.values() for p in values]
                row[kind] = {
                    "mean": round(statistics.mean(ps), 3),
                    "at_or_above_threshold": sum(p >= threshold for p in ps),
                    "n": len(ps),
                    "per_sentence": per_sentence,
                }
            table[f"{floor}/{silence_ms}ms"] = row
    return table


class _Mic(io.AudioInput):
    """A caller's microphone: ``pcm`` in 10 ms frames, paced in real time, then silence."""

    def __init__(self, pcm: NDArray[np.int16]) -> None:
        super().__init__(label="bench")
        self._pcm = pcm
        self._i = 0
        self.started: float | None = None

    async def __anext__(self) -> rtc.AudioFrame:
        if self.started is None:
            self.started = time.monotonic()
        await asyncio.sleep(max(0.0, self.started + self._i * 0.01 - time.monotonic()))
        chunk = self._pcm[self._i * FRAME : (self._i + 1) * FRAME]
        chunk = np.concatenate([chunk, np.zeros(FRAME - len(chunk), dtype=np.int16)])
        self._i += 1
        return rtc.AudioFrame(chunk.tobytes(), RATE, 1, FRAME)


class _TurnLog(logging.Handler):
    """livekit logs each end-of-turn prediction and each committed user turn at debug level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.probabilities: list[float] = []
        self.commits: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        p = getattr(record, "probability", None)
        if message == "eot prediction" and p is not None:
            self.probabilities.append(round(float(p), 3))
        elif message == "user turn committed":
            self.commits.append(time.monotonic())


async def session_delays(
    mode: str, noise_rms: float, vad: Any, detector: Any, gap_s: float
) -> dict[str, Any]:
    """Speak ``SESSION_SENTENCES`` into one session; delays from speech end to commit."""
    lead = np.zeros(RATE // 2, dtype=np.int16)
    parts: list[NDArray[np.int16]] = [lead]
    ends: list[float] = []
    for text in SESSION_SENTENCES:
        speech = spoken(text)
        ends.append((sum(len(p) for p in parts) + len(speech)) / RATE)
        parts += [speech, np.zeros(int(gap_s * RATE), dtype=np.int16)]
    mic = _Mic(with_noise(np.concatenate(parts), noise_rms, seed=0))

    handling, used = turn_handling(TurnTaking(turn_detection=mode), detector)  # type: ignore[arg-type]
    session: AgentSession[None] = AgentSession(stt=WhisperSTT(), vad=vad, turn_handling=handling)
    log = _TurnLog()
    lk_logger = logging.getLogger("livekit.agents")
    lk_logger.addHandler(log)
    lk_logger.setLevel(logging.DEBUG)
    try:
        session.input.audio = mic
        await session.start(Agent(instructions="Listen."))
        await asyncio.sleep(sum(len(p) for p in parts) / RATE + 0.5)
    finally:
        await session.aclose()
        lk_logger.removeHandler(log)
    assert mic.started is not None
    # each commit belongs to the latest sentence that ended before it
    delays = []
    for t in log.commits:
        ended = [mic.started + e for e in ends if mic.started + e <= t]
        if ended:
            delays.append(round(t - ended[-1], 3))
    return {
        "turn_detection": used,
        "end_of_speech_to_commit_s": delays,
        "p50_s": pct(delays, 0.5) if delays else None,
        "max_s": max(delays) if delays else None,
        "eot_probabilities": log.probabilities,
        "sentences": len(SESSION_SENTENCES),
    }


async def sessions() -> dict[str, Any]:
    vad = silero.VAD.load()
    detector = load_turn_detector()
    WhisperSTT.load()
    defaults = TurnTaking()
    gap = defaults.max_endpointing_delay + 1.5  # room for the slowest commit
    runs = {
        "model/digital_silence": ("model", 0.0),
        "model/noise_floor_-60dBFS": ("model", NOISE_FLOOR_RMS),
        "vad/digital_silence": ("vad", 0.0),
    }
    return {
        label: await session_delays(mode, rms, vad, detector, gap)
        for label, (mode, rms) in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-session", action="store_true", help="only the probabilities")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "turn_detector.json"
    )
    args = parser.parse_args()

    detector = load_turn_detector()
    if detector is None:
        raise SystemExit("the offline end-of-turn model does not load here")
    threshold = asyncio.run(detector.unlikely_threshold(LanguageCode("en")))
    assert threshold is not None
    defaults = TurnTaking()
    result: dict[str, Any] = {
        "benchmark": "turn_detector",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "model": detector.model,
        "unlikely_threshold_en": threshold,
        "endpointing_s": {
            "min": defaults.min_endpointing_delay,
            "max": defaults.max_endpointing_delay,
        },
        "voice": "piper en_US-joe-medium (testkit.audio.synthesize)",
        "probabilities": probabilities(threshold),
    }
    print(f"{detector.model}: end of turn when P >= {threshold} (en), else wait max_delay")
    for cond, row in result["probabilities"].items():
        cells = "  ".join(
            f"{kind} mean {v['mean']:.2f}, >= threshold {v['at_or_above_threshold']}/{v['n']}"
            for kind, v in row.items()
        )
        print(f"  {cond:28s} {cells}")
    if not args.skip_session:
        result["session"] = asyncio.run(sessions())
        for mode, s in result["session"].items():
            print(
                f"  session {mode:26s}: end of speech -> turn committed p50 {s['p50_s']} s, "
                f"max {s['max_s']} s, each {s['end_of_speech_to_commit_s']}, "
                f"P(eot) {s['eot_probabilities']}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
