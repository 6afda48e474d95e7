"""First audio of the offline voice (Piper) for replies whose first sentence is long: whole
first sentence (livekit's sentence tokenizer) vs first clause (``worker.clauses``).

The reply is streamed into the TTS the way the LLM streams it (a few characters at a time, at
``--llm-chars-per-s``); the figure is the time from the first text to the first audio frame.
Each variant's audio of the first reply is saved as a WAV under bench/results/ to listen to.

    .venv/bin/python bench/first_clause.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livekit.agents import tokenize, tts  # noqa: E402

from bench.stats import pct  # noqa: E402
from stimm.schema import ProviderSpec  # noqa: E402
from testkit.audio import rms, transcribe, write_wav  # noqa: E402
from worker.clauses import ClauseFirstTokenizer  # noqa: E402
from worker.providers import build_tts  # noqa: E402

REPLIES = [
    "The current exhibition, which opened last spring, shows paintings from the early "
    "twentieth century. It closes in May.",
    "On Sundays the museum opens at noon, and the last entry is one hour before closing time.",
    "Tickets cost twelve euros for adults, eight for students, and children under six go in "
    "for free.",
    "If you come by train, take the number four tram from the central station to the old "
    "harbour stop.",
]
TOKENIZERS: dict[str, Callable[[], tokenize.SentenceTokenizer]] = {
    "sentence": lambda: tokenize.blingfire.SentenceTokenizer(retain_format=True),
    "first-clause": ClauseFirstTokenizer,
}


def longest_pause(pcm: np.ndarray, sample_rate: int, frame_s: float = 0.02) -> float:
    """The longest run of silent 20 ms frames between the first and the last spoken one."""
    size = int(sample_rate * frame_s)
    loud = [rms(pcm[i : i + size]) > 300 for i in range(0, len(pcm) - size, size)]
    first, last = loud.index(True), len(loud) - loud[::-1].index(True)
    longest = run = 0
    for is_loud in loud[first:last]:
        run = 0 if is_loud else run + 1
        longest = max(longest, run)
    return longest * frame_s


async def first_audio(
    engine: tts.TTS[Any], text: str, chars_per_s: float
) -> tuple[float, np.ndarray]:
    """(seconds to the first audio frame, the whole audio) for one streamed reply."""
    frames = bytearray()
    first: float | None = None
    async with engine.stream() as stream:
        t0 = time.perf_counter()

        async def feed() -> None:
            for i in range(0, len(text), 4):
                stream.push_text(text[i : i + 4])
                await asyncio.sleep(4 / chars_per_s)
            stream.end_input()

        feeder = asyncio.create_task(feed())
        async for audio in stream:
            if first is None:
                first = time.perf_counter() - t0
            frames += audio.frame.data.tobytes()
        await feeder
    assert first is not None
    return first, np.frombuffer(bytes(frames), dtype=np.int16)


async def run(repeats: int, chars_per_s: float, results: Path) -> dict[str, dict[str, Any]]:
    piper = build_tts(ProviderSpec(provider="local"), voice=None, language="en")
    await first_audio(tts.StreamAdapter(tts=piper), "Warming up the voice.", 1e6)
    figures: dict[str, dict[str, Any]] = {}
    for label, make in TOKENIZERS.items():
        engine = tts.StreamAdapter(tts=piper, sentence_tokenizer=make())
        firsts: list[float] = []
        for _ in range(repeats):
            for reply in REPLIES:
                first, pcm = await first_audio(engine, reply, chars_per_s)
                firsts.append(first)
        # the sample to listen to: the first reply, whose first clause ends at "spring,"
        _, pcm = await first_audio(engine, REPLIES[0], chars_per_s)
        write_wav(results / f"first_clause_{label}.wav", pcm, engine.sample_rate)
        figures[label] = {
            "first_audio": {
                "n": len(firsts),
                "p50_ms": round(pct(firsts, 0.5) * 1000, 1),
                "p95_ms": round(pct(firsts, 0.95) * 1000, 1),
            },
            "sample": f"first_clause_{label}.wav",
            "sample_seconds": round(len(pcm) / engine.sample_rate, 2),
            "sample_longest_pause_ms": round(longest_pause(pcm, engine.sample_rate) * 1000),
            "sample_heard_by_whisper": transcribe(pcm, engine.sample_rate),
        }
        row = figures[label]
        print(
            f"{label:13s} first audio {row['first_audio']}; sample {row['sample_seconds']} s, "
            f"longest pause {row['sample_longest_pause_ms']} ms: {row['sample_heard_by_whisper']}",
            flush=True,
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--llm-chars-per-s",
        type=float,
        default=560.0,
        help="how fast the reply's text arrives (the embedded LLM: ~140 tokens/s)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "first_clause.json"
    )
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figures = asyncio.run(run(args.repeats, args.llm_chars_per_s, args.out.parent))
    result = {
        "benchmark": "first_clause",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "tts": "local piper en_US-joe-medium through livekit's tts.StreamAdapter",
        "llm_chars_per_s": args.llm_chars_per_s,
        "replies": REPLIES,
        "variants": figures,
    }
    args.out.write_text(json.dumps(result, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
