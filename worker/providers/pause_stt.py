"""Streaming on top of a non-streaming STT (offline Whisper): a final transcript at each pause.

livekit's ``stt.StreamAdapter`` sends an utterance to the STT only once the VAD has declared
the end of speech, ``min_silence_duration`` (0.55 s) after the last word; Whisper then needs
another ~0.4 s on two cores, so the transcript, and everything after it (retrieval, the LLM,
the reply), waited ~1 s after the caller stopped.

``PauseEndpointingAdapter`` transcribes as soon as the speech pauses for ``pause`` seconds
(0.2 s by default; Deepgram calls this endpointing), while the VAD is still waiting to be sure
the caller is done: the final transcript is usually there when the VAD's end of speech comes.
Each pause closes a segment; when the caller goes on, the next segment starts where the last
one ended, so nothing is transcribed twice and the turn's transcript is the segments in order.
Every final reaches speculative retrieval and preemptive generation as early as it exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc
from livekit.agents import stt, utils, vad
from livekit.agents.stt.stream_adapter import (
    DEFAULT_STREAM_ADAPTER_API_CONNECT_OPTIONS,
    StreamAdapter,
)
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)

DEFAULT_PAUSE = 0.2
"""Seconds of silence inside an utterance that close a segment and start its transcription."""
MIN_SEGMENT_SPEECH_WINDOWS = 3
"""VAD windows (32 ms each) of speech a pause needs behind it to close a segment: a breath or
a click alone is not sent to Whisper, which would make words up for it."""


class PauseEndpointingAdapter(StreamAdapter):
    """A streaming STT from a non-streaming one and a VAD, final at every pause.

    Args:
        stt: The non-streaming STT (e.g. ``WhisperSTT``).
        vad: The VAD that finds speech and pauses (the session's Silero VAD).
        pause: Silence, in seconds, after which the speech so far is transcribed.
    """

    def __init__(self, *, stt: stt.STT[Any], vad: vad.VAD, pause: float = DEFAULT_PAUSE) -> None:
        super().__init__(stt=stt, vad=vad)
        self._pause = pause

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return _PauseEndpointingStream(
            self,
            vad=self._vad,
            wrapped_stt=self._stt,
            language=language,
            conn_options=conn_options,
            pause=self._pause,
        )


@dataclass
class _Utterance:
    """The audio of the current utterance and how far it has been handed to the STT."""

    frames: list[rtc.AudioFrame] = field(default_factory=list)
    sent: int = 0
    """Frames already part of a segment."""
    last_speech: int = 0
    """Frames up to the last one the VAD heard speech in."""
    speech_windows: int = 0
    """VAD windows with speech since the last segment."""

    def pending_speech(self, min_windows: int = 1) -> bool:
        return self.last_speech > self.sent and self.speech_windows >= min_windows


class _PauseEndpointingStream(stt.RecognizeStream):
    def __init__(
        self,
        adapter: PauseEndpointingAdapter,
        *,
        vad: vad.VAD,
        wrapped_stt: stt.STT[Any],
        language: NotGivenOr[str],
        conn_options: APIConnectOptions,
        pause: float,
    ) -> None:
        super().__init__(stt=adapter, conn_options=DEFAULT_STREAM_ADAPTER_API_CONNECT_OPTIONS)
        self._vad = vad
        self._wrapped_stt = wrapped_stt
        self._wrapped_conn_options = conn_options
        self._language = language
        self._pause = pause
        # one transcription at a time, so finals come out in the order they were spoken
        self._segments: asyncio.Queue[tuple[list[rtc.AudioFrame], float] | None] = asyncio.Queue()

    async def _run(self) -> None:
        vad_stream = self._vad.stream()

        async def forward_input() -> None:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    vad_stream.flush()
                    continue
                vad_stream.push_frame(item)
            vad_stream.end_input()

        tasks = [
            asyncio.create_task(forward_input(), name="forward_input"),
            asyncio.create_task(self._segment(vad_stream), name="segment"),
            asyncio.create_task(self._transcribe(), name="transcribe"),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            await utils.aio.cancel_and_wait(*tasks)
            await vad_stream.aclose()

    async def _segment(self, vad_stream: vad.VADStream) -> None:
        """Cut the VAD's speech into segments at pauses and at the end of speech."""
        utterance: _Utterance | None = None
        try:
            async for ev in vad_stream:
                if ev.type == vad.VADEventType.START_OF_SPEECH:
                    # the speech so far, with the VAD's prefix padding
                    utterance = _Utterance(frames=list(ev.frames))
                    utterance.last_speech = len(utterance.frames)
                    utterance.speech_windows = MIN_SEGMENT_SPEECH_WINDOWS
                    self._event_ch.send_nowait(stt.SpeechEvent(stt.SpeechEventType.START_OF_SPEECH))
                elif ev.type == vad.VADEventType.INFERENCE_DONE and utterance is not None:
                    utterance.frames.extend(ev.frames)
                    # (Silero reports the silence accumulated before this window's decision,
                    # so speech is marked one 32 ms window late: harmless here)
                    if ev.raw_accumulated_silence == 0:
                        utterance.last_speech = len(utterance.frames)
                        utterance.speech_windows += 1
                    elif ev.raw_accumulated_silence >= self._pause and utterance.pending_speech(
                        MIN_SEGMENT_SPEECH_WINDOWS
                    ):
                        pause_started = time.time() - ev.raw_accumulated_silence
                        self._send_segment(utterance, pause_started)
                elif ev.type == vad.VADEventType.END_OF_SPEECH:
                    speech_end_time = time.time() - ev.silence_duration - ev.inference_duration
                    self._event_ch.send_nowait(
                        stt.SpeechEvent(
                            type=stt.SpeechEventType.END_OF_SPEECH,
                            speech_end_time=speech_end_time,
                        )
                    )
                    if utterance is None:  # a VAD that gives no START: the whole speech
                        self._segments.put_nowait((list(ev.frames), speech_end_time))
                    elif utterance.pending_speech():
                        self._send_segment(utterance, speech_end_time)
                    utterance = None
        finally:
            self._segments.put_nowait(None)

    def _send_segment(self, utterance: _Utterance, speech_end_time: float) -> None:
        end = len(utterance.frames)
        self._segments.put_nowait((utterance.frames[utterance.sent : end], speech_end_time))
        utterance.sent = end
        utterance.speech_windows = 0

    async def _transcribe(self) -> None:
        while (segment := await self._segments.get()) is not None:
            frames, speech_end_time = segment
            if not frames:
                continue
            event = await self._wrapped_stt.recognize(
                buffer=utils.merge_frames(frames),
                language=self._language,
                conn_options=self._wrapped_conn_options,
            )
            if not event.alternatives or not event.alternatives[0].text:
                continue
            with contextlib.suppress(utils.aio.ChanClosed):
                self._event_ch.send_nowait(
                    stt.SpeechEvent(
                        type=stt.SpeechEventType.FINAL_TRANSCRIPT,
                        alternatives=[event.alternatives[0]],
                        speech_end_time=speech_end_time,
                    )
                )
