"""STT, LLM and TTS providers: factories keyed by provider name, plus the offline engines."""

from __future__ import annotations

from .local_stt import WhisperSTT
from .local_tts import PiperTTS
from .registry import (
    PROVIDERS,
    MissingApiKeyError,
    UnknownProviderError,
    build_llm,
    build_stt,
    build_tts,
)

__all__ = [
    "PROVIDERS",
    "MissingApiKeyError",
    "PiperTTS",
    "UnknownProviderError",
    "WhisperSTT",
    "build_llm",
    "build_stt",
    "build_tts",
]
