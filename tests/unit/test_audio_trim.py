"""A reply's audio starts with its first sound: the voice's lead-in silence is not played."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT, TimedString
from numpy.typing import NDArray

from testkit.audio import synthesize
from worker.audio_trim import MAX_TRIM_S, ONSET_PAD_S, SOUND_LEVEL, trim_lead_in

pytestmark = pytest.mark.unit

RATE = 24_000


def frames_of(pcm: NDArray[np.int16], sizes_ms: list[int]) -> list[rtc.AudioFrame]:
    """``pcm`` cut as livekit's TTS emitter cuts it: growing frames, then the last size."""
    out, i, k = [], 0, 0
    while i < len(pcm):
        n = RATE * sizes_ms[min(k, len(sizes_ms) - 1)] // 1000
        chunk = pcm[i : i + n]
        out.append(rtc.AudioFrame(chunk.tobytes(), RATE, 1, len(chunk)))
        i, k = i + n, k + 1
    return out


async def played(frames: list[rtc.AudioFrame]) -> list[rtc.AudioFrame]:
    async def source() -> AsyncIterator[rtc.AudioFrame]:
        for frame in frames:
            yield frame

    return [frame async for frame in trim_lead_in(source())]


def pcm_of(frames: list[rtc.AudioFrame]) -> NDArray[np.int16]:
    return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])


async def test_a_synthesis_starts_at_its_first_sound_and_keeps_every_sample_after_it() -> None:
    pcm = synthesize("The museum opens at ten.", RATE)
    onset = int(np.flatnonzero(np.abs(pcm) > SOUND_LEVEL)[0])
    assert onset / RATE >= 0.02, "Piper's lead-in this test is about"

    out = pcm_of(await played(frames_of(pcm, [10, 20, 40, 80, 200])))

    pad = int(ONSET_PAD_S * RATE)
    assert len(out) == len(pcm) - (onset - pad)
    assert np.array_equal(out, pcm[onset - pad :])


async def test_transcripts_on_dropped_frames_reach_the_first_frame_played() -> None:
    lead_in = np.zeros(RATE // 20, dtype=np.int16)  # 50 ms of silence in 10-ms frames
    speech = (np.sin(np.arange(RATE // 10) / 5) * 8000).astype(np.int16)
    frames = frames_of(np.concatenate([lead_in, speech]), [10])
    words = [TimedString("The", start_time=0.0, end_time=0.1), TimedString(" museum")]
    frames[0].userdata[USERDATA_TIMED_TRANSCRIPT] = words[:1]
    frames[2].userdata[USERDATA_TIMED_TRANSCRIPT] = words[1:]

    out = await played(frames)

    assert out[0].userdata[USERDATA_TIMED_TRANSCRIPT] == words
    assert all(USERDATA_TIMED_TRANSCRIPT not in f.userdata for f in out[1:])
    onset = int(np.flatnonzero(np.abs(speech) > SOUND_LEVEL)[0])
    assert len(pcm_of(out)) == len(speech) - onset + int(ONSET_PAD_S * RATE)


@pytest.mark.parametrize(
    "silence_s", [MAX_TRIM_S + 0.1, 0.05], ids=["long-pause-first", "nothing-audible"]
)
async def test_silence_that_is_not_a_lead_in_is_played_as_it_is(silence_s: float) -> None:
    silence = np.zeros(int(RATE * silence_s), dtype=np.int16)
    speech = (np.sin(np.arange(RATE // 10) / 5) * 8000).astype(np.int16)
    pcm = np.concatenate([silence, speech]) if silence_s > MAX_TRIM_S else silence

    out = pcm_of(await played(frames_of(pcm, [20])))

    assert np.array_equal(out, pcm)
