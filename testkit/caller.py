"""A test caller: a real LiveKit participant that speaks into the room and records the agent."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from livekit import rtc
from numpy.typing import NDArray

from .audio import SAMPLE_RATE, rms

FRAME_MS = 10
SAMPLES_PER_FRAME = SAMPLE_RATE * FRAME_MS // 1000
SPEECH_RMS = 300.0


@dataclass
class Utterance:
    """One stretch of agent speech as the caller heard it."""

    pcm: NDArray[np.int16]
    first_audio_at: float  # time.monotonic() of the first loud frame
    last_audio_at: float


class Caller:
    """Joins a room with a token, keeps a live microphone track, records what it hears."""

    heard_frame_ms: ClassVar[int | None] = None
    """Frames heard, in ms (livekit's 10 when None). Latency is timed to a frame: keep it small
    for callers that measure; a process hearing many calls at once wants fewer, larger frames,
    or its event loop falls behind the audio and opens a late-subscribed track after the agent
    has started speaking into it."""

    connected: ClassVar[set[Caller]] = set()
    """Callers in a room right now; the e2e suite makes any a test left behind leave."""

    def __init__(self) -> None:
        self.room = rtc.Room()
        self._source = rtc.AudioSource(SAMPLE_RATE, 1)
        self._speech: asyncio.Queue[NDArray[np.int16]] = asyncio.Queue()
        self._heard: list[tuple[float, NDArray[np.int16]]] = []
        self._cursor = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.agent_joined_at: float | None = None
        self.agent_joined = asyncio.Event()
        self.speech_ended_at: float | None = None

    async def join(self, url: str, token: str) -> None:
        self.room.on("track_subscribed", self._on_track)
        self.room.on("participant_connected", self._on_participant)
        await self.connect(url, token)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        self._tasks.append(asyncio.create_task(self._microphone()))

    async def connect(self, url: str, token: str) -> None:
        """Join the room, noting the agent if it is already there."""
        await self.room.connect(url, token)
        Caller.connected.add(self)
        for p in self.room.remote_participants.values():
            self._on_participant(p)

    async def leave(self) -> None:
        Caller.connected.discard(self)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.room.disconnect()

    def _on_participant(self, p: rtc.RemoteParticipant) -> None:
        if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT and not self.agent_joined.is_set():
            self.agent_joined_at = time.monotonic()
            self.agent_joined.set()

    def _on_track(
        self, track: rtc.Track, _pub: rtc.RemoteTrackPublication, _p: rtc.RemoteParticipant
    ) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._tasks.append(asyncio.create_task(self._record(track)))

    async def _record(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream.from_track(
            track=track, sample_rate=SAMPLE_RATE, num_channels=1, frame_size_ms=self.heard_frame_ms
        )
        async for ev in stream:
            pcm = np.frombuffer(ev.frame.data, dtype=np.int16).copy()
            self._heard.append((time.monotonic(), pcm))

    async def _microphone(self) -> None:
        """A live mic: speech when queued, silence otherwise, paced by the source's queue."""
        silence = np.zeros(SAMPLES_PER_FRAME, dtype=np.int16)
        while True:
            pcm = self._speech.get_nowait() if not self._speech.empty() else None
            if pcm is None:
                await self._push(silence)
                continue
            for i in range(0, len(pcm), SAMPLES_PER_FRAME):
                chunk = pcm[i : i + SAMPLES_PER_FRAME]
                if len(chunk) < SAMPLES_PER_FRAME:
                    chunk = np.pad(chunk, (0, SAMPLES_PER_FRAME - len(chunk)))
                await self._push(chunk)
            await self._source.wait_for_playout()
            self.speech_ended_at = time.monotonic()

    async def _push(self, chunk: NDArray[np.int16]) -> None:
        frame = rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, len(chunk))
        await self._source.capture_frame(frame)

    async def say(self, pcm: NDArray[np.int16]) -> float:
        """Speak ``pcm`` (48 kHz mono) and return when it has been played out."""
        self.speech_ended_at = None
        await self._speech.put(pcm)
        while self.speech_ended_at is None:
            await asyncio.sleep(0.01)
        return self.speech_ended_at

    def loudest(self) -> float:
        """The highest RMS of any frame heard so far (0: only silence)."""
        return max((rms(pcm) for _, pcm in self._heard), default=0.0)

    def skip_heard(self) -> None:
        """Forget everything heard so far."""
        self._cursor = len(self._heard)

    async def next_utterance(self, timeout: float = 60.0, silence_s: float = 1.5) -> Utterance:
        """Wait for the agent to speak, then for ``silence_s`` without speech; return it."""
        deadline = time.monotonic() + timeout
        start: int | None = None
        last_loud = 0.0
        first_loud = 0.0
        i = self._cursor
        while time.monotonic() < deadline:
            while i < len(self._heard):
                t, pcm = self._heard[i]
                if rms(pcm) > SPEECH_RMS:
                    if start is None:
                        start, first_loud = i, t
                    last_loud = t
                i += 1
            if start is not None and time.monotonic() - last_loud > silence_s:
                end = i
                self._cursor = end
                audio = np.concatenate([p for _, p in self._heard[start:end]])
                return Utterance(audio, first_loud, last_loud)
            await asyncio.sleep(0.05)
        raise TimeoutError(f"agent did not speak within {timeout:.0f}s")


class Listener(Caller):
    """A caller without a microphone, so the agent runs no VAD or STT for it: a dozen live
    microphones would cost a dozen real-time VADs on a 2-core machine.

    It hears in 100 ms frames (in 10 ms ones a test hearing twelve calls handled 1,200 frames a
    second and fell behind); with ``hears=False`` it does not open the agent's audio at all,
    for when only the agent's arrival counts (a dispatch burst)."""

    heard_frame_ms = 100

    def __init__(self, *, hears: bool = True) -> None:
        super().__init__()
        self.hears = hears

    async def join(self, url: str, token: str) -> None:
        if self.hears:
            self.room.on("track_subscribed", self._on_track)
        self.room.on("participant_connected", self._on_participant)
        await self.connect(url, token)
