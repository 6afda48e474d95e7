"""Answering-machine detection on outbound calls: livekit-agents' ``AMD``, then the agent's
choice for a machine (leave its message after the beep, or hang up).

``AMD`` classifies the callee's first words with the session's own LLM (a ``save_prediction``
tool call, ``tool_choice="required"``) from the session's own STT transcripts; a short greeting
followed by silence ("Hello?") is a human without asking the LLM. While it listens, the agent's
speech is held back. The beep that ends a voicemail greeting is a pure tone: ``BeepDetector``
finds it in the callee's audio, so the message starts after it rather than over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice.amd import AMD, AMDCategory, AMDPredictionEvent

from stimm.schema import AnsweredBy, VoicemailOptions

logger = logging.getLogger("stimm.worker")

BEEP_RATE = 8_000
BEEP_MIN_S = 0.15
"""A tone must last this long to count as the beep."""
BEEP_WAIT_S = 6.0
"""After a machine verdict, how long to wait for a beep not heard yet before speaking anyway."""


def answered_by(result: AMDPredictionEvent | None) -> AnsweredBy:
    if result is None or result.category == AMDCategory.UNCERTAIN:
        return "unknown"
    return "machine" if result.is_machine else "human"


def is_tone(frame: np.ndarray[Any, np.dtype[np.int16]], rate: int = BEEP_RATE) -> bool:
    """Whether a frame is one loud pure tone between 300 and 3,000 Hz (a voicemail beep).

    Speech spreads its energy over many harmonics; a beep puts nearly all of it in one
    frequency bin.
    """
    x = frame.astype(np.float64)
    if x.size < 64 or np.sqrt(np.mean(x * x)) < 300.0:
        return False
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1.0 / rate)
    band = (freqs >= 300.0) & (freqs <= 3_000.0)
    peak = int(np.argmax(np.where(band, spectrum, 0.0)))
    around = spectrum[max(peak - 2, 0) : peak + 3].sum()
    return bool(around / max(spectrum.sum(), 1e-9) > 0.9)


class BeepDetector:
    """Watches the callee's audio for the voicemail beep; ``ended_at`` is when the last one
    ended (``time.monotonic``)."""

    def __init__(self, track: rtc.Track) -> None:
        self.ended_at: float | None = None
        self._heard = asyncio.Event()
        self._stream = rtc.AudioStream.from_track(
            track=track, sample_rate=BEEP_RATE, num_channels=1, frame_size_ms=20
        )
        self._task = asyncio.create_task(self._run(), name="voicemail-beep")

    async def _run(self) -> None:
        tone_s = 0.0
        async for event in self._stream:
            frame = event.frame
            samples = np.frombuffer(frame.data, dtype=np.int16)
            if is_tone(samples, frame.sample_rate):
                tone_s += frame.samples_per_channel / frame.sample_rate
            elif tone_s > 0:
                if tone_s >= BEEP_MIN_S:
                    self.ended_at = time.monotonic()
                    self._heard.set()
                tone_s = 0.0

    async def wait(self, timeout: float) -> bool:
        """Whether a beep was heard, waiting up to ``timeout`` s for one."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._heard.wait(), timeout)
        return self._heard.is_set()

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._stream.aclose()


def _audio_track(participant: rtc.RemoteParticipant) -> rtc.Track | None:
    for publication in participant.track_publications.values():
        if publication.kind == rtc.TrackKind.KIND_AUDIO and publication.track is not None:
            return publication.track
    return None


async def screen(
    agent_session: AgentSession[Any],
    participant: rtc.RemoteParticipant,
    options: VoicemailOptions,
) -> tuple[AnsweredBy, BeepDetector | None]:
    """Listen to who answered: returns the verdict and the beep detector (still listening).

    Call right after ``agent_session.start``: the agent stays silent until the verdict.
    """
    beep: BeepDetector | None = None
    detector = AMD(
        agent_session,
        llm=None,  # the agent's own LLM
        stt=None,  # the session's transcripts
        participant_identity=participant.identity,
        ivr_detection=False,
        suppress_compatibility_warning=True,
        detection_options={"timeout": options.timeout_s},
    )
    async with detector:
        deadline = time.monotonic() + 5.0
        while beep is None and time.monotonic() < deadline:
            if (track := _audio_track(participant)) is not None:
                beep = BeepDetector(track)
                break
            await asyncio.sleep(0.1)
        try:
            result: AMDPredictionEvent | None = await asyncio.wait_for(
                detector.execute(), options.timeout_s + 15.0
            )
        except (TimeoutError, RuntimeError) as e:
            logger.warning("answering-machine detection gave no verdict: %s", e)
            result = None
    verdict = answered_by(result)
    logger.info("answered by %s (%s)", verdict, result.category.value if result else "no verdict")
    return verdict, beep


async def leave_message(
    agent_session: AgentSession[Any], message: str, beep: BeepDetector | None
) -> None:
    """Say ``message`` once the beep has played (or after ``BEEP_WAIT_S`` without one)."""
    if beep is not None and not await beep.wait(BEEP_WAIT_S):
        logger.info("no voicemail beep heard; leaving the message anyway")
    await agent_session.say(message, allow_interruptions=False)
