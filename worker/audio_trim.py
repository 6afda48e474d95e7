"""Speech synthesis without its lead-in: a reply's first audio frame carries its first sound.

Voices start a synthesis with some near silence: ~40 ms for Piper's (and the benchmarks'
pre-synthesized ElevenLabs voice, made with it). Played as it comes, that silence is time the
caller waits after the agent has begun "speaking": measured at the caller (bench/roundtrip.py),
replies were heard ~40 ms later than trimmed ones. :func:`trim_lead_in` drops that silence
from the start of every synthesis, keeping a few milliseconds before the first sound so its
onset is not clipped. Silence inside or after the speech is left alone: it is prosody.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import numpy as np
from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT

SOUND_LEVEL = 256
"""A sample louder than this (-42 dBFS) is sound; below it, the lead-in's hiss and dither."""
ONSET_PAD_S = 0.005
"""Silence kept before the first sound, so the onset's rise is not cut."""
MAX_TRIM_S = 0.3
"""A lead-in is at most this long: a synthesis silent for longer is passed on as it is."""


async def trim_lead_in(frames: AsyncIterable[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
    """``frames`` from their first sound on (less :data:`ONSET_PAD_S`).

    Timed transcripts attached to dropped frames move to the first frame passed on, so a
    transcript synchronized with the audio loses no words.
    """
    held: list[rtc.AudioFrame] = []
    held_s = 0.0
    trimming = True
    async for frame in frames:
        if not trimming:
            yield frame
            continue
        held.append(frame)
        held_s += frame.duration
        start = _first_sound(frame)
        if start is None and held_s < MAX_TRIM_S:
            continue
        trimming = False
        if start is None:  # silent for longer than any lead-in: not ours to drop
            for kept in held:
                yield kept
        else:
            yield _from(held, start)
    if trimming:  # nothing audible at all: pass it on, with its transcripts
        for kept in held:
            yield kept


def _first_sound(frame: rtc.AudioFrame) -> int | None:
    """Index of the first sample (per channel) above :data:`SOUND_LEVEL`, if any."""
    samples = np.frombuffer(frame.data, dtype=np.int16).reshape(-1, frame.num_channels)
    loud = np.flatnonzero(np.abs(samples).max(axis=1) > SOUND_LEVEL)
    return int(loud[0]) if len(loud) else None


def _from(held: list[rtc.AudioFrame], start: int) -> rtc.AudioFrame:
    """The held audio from the pad before ``start`` (in the last held frame) on, as one frame
    carrying every held frame's transcripts."""
    last = held[-1]
    channels = last.num_channels
    pcm = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in held])
    onset = len(pcm) // channels - last.samples_per_channel + start
    begin = max(onset - int(ONSET_PAD_S * last.sample_rate), 0)
    timed = [t for f in held for t in f.userdata.get(USERDATA_TIMED_TRANSCRIPT) or []]
    out = rtc.AudioFrame(
        data=pcm[begin * channels :].tobytes(),
        sample_rate=last.sample_rate,
        num_channels=channels,
        samples_per_channel=len(pcm) // channels - begin,
        userdata=dict(last.userdata),
    )
    if timed:
        out.userdata[USERDATA_TIMED_TRANSCRIPT] = timed
    return out
