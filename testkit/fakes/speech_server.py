"""A local server speaking the streaming speech protocols of Deepgram, OpenAI, ElevenLabs,
Async.ai and Kokoro-FastAPI.

The real livekit plugins (``deepgram.STT``, ``deepgram.TTS``, ``openai.STT``, ``openai.TTS``,
``elevenlabs.TTS``, ``asyncai.TTS``) are pointed at it with ``base_url`` so their own network
code runs. Speech
is real: transcripts come from offline Whisper, audio from offline Piper, so a test can check
that what was said is what came out.

Endpoints (all under one port):

- Deepgram STT: websocket ``/v1/listen`` (binary linear16 audio in; ``Results`` messages out,
  interim ones while audio arrives, a final one with ``speech_final`` after silence or on
  ``Finalize``) and ``POST /v1/listen`` (prerecorded WAV).
- Deepgram TTS: websocket ``/v1/speak`` (``Speak``/``Flush``/``Close`` in; binary PCM and
  ``Flushed`` out) and ``POST /v1/speak``.
- OpenAI: ``POST /v1/audio/transcriptions`` (multipart WAV) and ``POST /v1/audio/speech``
  (raw streamed PCM, or SSE ``speech.audio.delta`` events when ``stream_format`` is ``sse``).
- ElevenLabs TTS: websocket ``/v1/text-to-speech/{voice}/multi-stream-input`` (contexts,
  ``flush``, ``close_context``; base64 ``audio`` and ``isFinal`` out).
- Async.ai TTS: websocket ``/text_to_speech/websocket/ws?api_key=...&version=v1`` (an init
  message naming model, voice and output format, then ``transcript`` chunks per ``context_id``,
  spoken on ``force``; an empty transcript or ``close_context`` ends the context; base64
  ``audio`` and ``final`` out).
- Kokoro-FastAPI: ``POST /kokoro/v1/audio/speech`` (OpenAI's body; only Kokoro's model names
  and voices; ``stream_format`` ignored, so raw PCM streams back whatever the client asked).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import uuid
import wave
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from numpy.typing import NDArray

from testkit.audio import rms, synthesize, transcribe

CHUNK_S = 0.1
"""Audio is streamed back in chunks of this many seconds."""
SPEECH_RMS = 300.0
"""Below this loudness a 50 ms Deepgram frame counts as silence."""
KOKORO_MODELS = ("kokoro", "tts-1", "tts-1-hd")
"""The model names Kokoro-FastAPI accepts."""
KOKORO_VOICES = ("af_heart", "af_bella", "af_nicole", "am_adam", "bf_emma", "bm_george")
"""A few of Kokoro's voices; any other is refused, as the real server refuses unknown ones."""


class FakeSpeechServer:
    """Deepgram, OpenAI, ElevenLabs, Async.ai and Kokoro speech endpoints on 127.0.0.1,
    in-process.

    Args:
        interim_every_s: Deepgram STT sends an interim result per this much new speech.
        endpoint_silence_s: Deepgram STT ends an utterance after this much silence; ``None``:
            after the ``endpointing`` milliseconds the client asked for, as Deepgram does
            (livekit's plugin asks for 25 ms).
        canned_transcript: Deepgram STT answers this text at once instead of transcribing:
            a provider that costs nothing, for measuring the platform alone (benchmarks).

    Attributes:
        requests: ``(endpoint, details)`` for every request, in order.
        interims: Every interim transcript the Deepgram STT endpoint sent.
    """

    def __init__(
        self,
        *,
        interim_every_s: float = 0.8,
        endpoint_silence_s: float | None = 0.5,
        canned_transcript: str | None = None,
    ) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._canned_transcript = canned_transcript
        self.interims: list[str] = []
        self._interim_every_s = interim_every_s
        self._endpoint_silence_s = endpoint_silence_s
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeSpeechServer:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/listen", self._deepgram_listen_ws)
        app.router.add_post("/v1/listen", self._deepgram_listen_http)
        app.router.add_get("/v1/speak", self._deepgram_speak_ws)
        app.router.add_post("/v1/speak", self._deepgram_speak_http)
        app.router.add_post("/v1/audio/transcriptions", self._openai_transcriptions)
        app.router.add_post("/v1/audio/speech", self._openai_speech)
        app.router.add_get(
            "/v1/text-to-speech/{voice}/multi-stream-input", self._elevenlabs_multi_stream
        )
        app.router.add_get("/text_to_speech/websocket/ws", self._asyncai_ws)
        app.router.add_post("/kokoro/v1/audio/speech", self._kokoro_speech)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def endpoints(self, name: str) -> list[dict[str, Any]]:
        """Details of every request to one endpoint (e.g. ``"deepgram.listen.ws"``)."""
        return [d for n, d in self.requests if n == name]

    # --- Deepgram STT --------------------------------------------------------------------

    async def _deepgram_listen_ws(self, request: web.Request) -> web.WebSocketResponse:
        q = request.query
        self.requests.append(
            ("deepgram.listen.ws", {**q, "auth": request.headers.get("Authorization")})
        )
        rate = int(q.get("sample_rate", "16000"))
        interim = q.get("interim_results", "true") == "true"
        endpoint_s = self._endpoint_silence_s
        if endpoint_s is None:  # Deepgram's own default is 10 ms
            endpoint_s = int(q.get("endpointing", "10")) / 1000
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        request_id = uuid.uuid4().hex
        utterance: list[NDArray[np.int16]] = []
        offset_s = 0.0  # stream time of the utterance start
        total_s = 0.0
        speech_s = since_interim_s = silence_s = 0.0

        async def send_results(is_final: bool) -> None:
            pcm = np.concatenate(utterance) if utterance else np.zeros(0, np.int16)
            if self._canned_transcript is not None:
                text = self._canned_transcript
            else:
                text = await asyncio.to_thread(transcribe, pcm, rate) if len(pcm) else ""
            if not is_final:
                self.interims.append(text)
            await ws.send_json(_dg_results(text, request_id, offset_s, len(pcm) / rate, is_final))

        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                frame = np.frombuffer(msg.data, dtype=np.int16)
                dur = len(frame) / rate
                total_s += dur
                loud = rms(frame) >= SPEECH_RMS
                if loud and speech_s == 0.0:
                    offset_s = total_s - dur
                if loud or speech_s > 0.0:
                    utterance.append(frame)
                if loud:
                    speech_s += dur
                    since_interim_s += dur
                    silence_s = 0.0
                elif speech_s > 0.0:
                    silence_s += dur
                if interim and since_interim_s >= self._interim_every_s:
                    since_interim_s = 0.0
                    await send_results(is_final=False)
                if speech_s > 0.0 and silence_s >= endpoint_s:
                    await send_results(is_final=True)
                    utterance, speech_s, since_interim_s, silence_s = [], 0.0, 0.0, 0.0
            elif msg.type == WSMsgType.TEXT:
                kind = json.loads(msg.data).get("type")
                if kind == "Finalize" and utterance and speech_s > 0.0:
                    await send_results(is_final=True)
                    utterance, speech_s, since_interim_s, silence_s = [], 0.0, 0.0, 0.0
                elif kind == "CloseStream":
                    await ws.send_json({"type": "Metadata", "request_id": request_id})
                    await ws.close()
        return ws

    async def _deepgram_listen_http(self, request: web.Request) -> web.Response:
        self.requests.append(("deepgram.listen.http", dict(request.query)))
        pcm, rate = _read_wav(await request.read())
        text = await asyncio.to_thread(transcribe, pcm, rate)
        alt = _dg_alternative(text, 0.0, len(pcm) / rate)
        return web.json_response(
            {
                "metadata": {"request_id": uuid.uuid4().hex},
                "results": {"channels": [{"alternatives": [alt]}]},
            }
        )

    # --- Deepgram TTS --------------------------------------------------------------------

    async def _deepgram_speak_ws(self, request: web.Request) -> web.WebSocketResponse:
        q = request.query
        self.requests.append(("deepgram.speak.ws", dict(q)))
        rate = int(q.get("sample_rate", "24000"))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        text = ""
        sequence = 0
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data.get("type") == "Speak":
                text += str(data.get("text", ""))
            elif data.get("type") == "Flush":
                async for chunk in _speech_chunks(text, rate):
                    await ws.send_bytes(chunk)
                await ws.send_json({"type": "Flushed", "sequence_id": sequence})
                sequence += 1
                text = ""
            elif data.get("type") == "Close":
                await ws.close()
        return ws

    async def _deepgram_speak_http(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(("deepgram.speak.http", {**request.query, **body}))
        rate = int(request.query.get("sample_rate", "24000"))
        return await _stream_pcm(request, str(body.get("text", "")), rate, "audio/pcm")

    # --- OpenAI --------------------------------------------------------------------------

    async def _openai_transcriptions(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        fields = {k: str(v) for k, v in form.items() if k != "file"}
        self.requests.append(
            ("openai.transcriptions", {**fields, "auth": request.headers.get("Authorization")})
        )
        if not isinstance(upload, web.FileField):
            return web.json_response({"error": {"message": "file is required"}}, status=400)
        pcm, rate = _read_wav(upload.file.read())
        text = await asyncio.to_thread(transcribe, pcm, rate)
        if fields.get("response_format") == "verbose_json":
            return web.json_response(
                {"text": text, "language": "english", "duration": len(pcm) / rate}
            )
        return web.json_response({"text": text})

    async def _openai_speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(
            ("openai.speech", {**body, "auth": request.headers.get("Authorization")})
        )
        text = str(body.get("input", ""))
        if body.get("response_format", "mp3") != "pcm":
            return web.json_response(
                {"error": {"message": "this fake only speaks response_format=pcm"}}, status=400
            )
        if body.get("stream_format") != "sse":
            return await _stream_pcm(request, text, 24_000, "audio/pcm")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        async for chunk in _speech_chunks(text, 24_000):
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()}
            await resp.write(f"data: {json.dumps(event)}\n\n".encode())
        done = {"type": "speech.audio.done", "usage": {"input_tokens": len(text.split())}}
        await resp.write(f"data: {json.dumps(done)}\n\n".encode())
        await resp.write_eof()
        return resp

    # --- ElevenLabs ----------------------------------------------------------------------

    async def _elevenlabs_multi_stream(self, request: web.Request) -> web.WebSocketResponse:
        q = request.query
        self.requests.append(
            (
                "elevenlabs.multi_stream",
                {
                    **q,
                    "voice": request.match_info["voice"],
                    "auth": request.headers.get("xi-api-key"),
                },
            )
        )
        fmt = q.get("output_format", "")
        if not fmt.startswith("pcm_"):
            raise web.HTTPBadRequest(text="this fake only speaks pcm_<rate> output formats")
        rate = int(fmt.split("_")[1])
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        pending: dict[str, str] = {}
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            ctx = str(data.get("context_id", ""))
            if data.get("close_socket"):
                await ws.close()
            elif data.get("close_context"):
                await self._eleven_speak(ws, ctx, pending.pop(ctx, ""), rate)
                await ws.send_json({"isFinal": True, "contextId": ctx})
            elif "text" in data:
                pending[ctx] = pending.get(ctx, "") + str(data["text"])
                if data.get("flush"):
                    await self._eleven_speak(ws, ctx, pending.pop(ctx, ""), rate)
        return ws

    async def _eleven_speak(
        self, ws: web.WebSocketResponse, ctx: str, text: str, rate: int
    ) -> None:
        async for chunk in _speech_chunks(text, rate):
            audio = base64.b64encode(chunk).decode()
            await ws.send_json({"audio": audio, "contextId": ctx, "alignment": None})

    # --- Async.ai ------------------------------------------------------------------------

    async def _asyncai_ws(self, request: web.Request) -> web.WebSocketResponse:
        q = request.query
        details: dict[str, Any] = {**q, "init": None, "transcripts": []}
        self.requests.append(("asyncai.ws", details))
        if not q.get("api_key") or q.get("version") != "v1":
            raise web.HTTPUnauthorized(text="api_key and version=v1 are required")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        rate = 0
        pending: dict[str, str] = {}
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if details["init"] is None:
                details["init"] = data
                fmt = data.get("output_format") or {}
                rate = int(fmt.get("sample_rate", 44_100))
                if not data.get("model_id") or fmt.get("encoding", "pcm_s16le") != "pcm_s16le":
                    await ws.send_json(
                        {"error_code": "invalid_request", "message": "this fake speaks pcm_s16le"}
                    )
                    await ws.close()
                continue
            if data.get("terminate"):
                await ws.close()
                continue
            ctx = str(data.get("context_id", ""))
            transcript = str(data.get("transcript", ""))
            details["transcripts"].append(transcript)
            pending[ctx] = pending.get(ctx, "") + transcript
            if data.get("force") or transcript == "" or data.get("close_context"):
                async for chunk in _speech_chunks(pending.pop(ctx, ""), rate):
                    audio = base64.b64encode(chunk).decode()
                    await ws.send_json({"audio": audio, "final": False, "context_id": ctx})
            if transcript == "" or data.get("close_context"):
                await ws.send_json({"audio": "", "final": True, "context_id": ctx})
        return ws

    # --- Kokoro-FastAPI ------------------------------------------------------------------

    async def _kokoro_speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(
            ("kokoro.speech", {**body, "auth": request.headers.get("Authorization")})
        )
        if body.get("model") not in KOKORO_MODELS:
            return web.json_response(
                {"detail": {"error": "invalid_model", "message": "Unsupported model"}}, status=400
            )
        if body.get("voice") not in KOKORO_VOICES:
            return web.json_response(
                {"detail": {"error": "validation_error", "message": "Voice not found"}},
                status=400,
            )
        if body.get("response_format", "mp3") != "pcm":
            return web.json_response(
                {"detail": {"message": "this fake only speaks response_format=pcm"}}, status=400
            )
        return await _stream_pcm(request, str(body.get("input", "")), 24_000, "audio/pcm")


def _dg_alternative(text: str, start: float, duration: float) -> dict[str, Any]:
    words = text.split()
    step = duration / max(len(words), 1)
    return {
        "transcript": text,
        "confidence": 0.9,
        "words": [
            {
                "word": w.strip(".,?!").lower(),
                "punctuated_word": w,
                "start": start + i * step,
                "end": start + (i + 1) * step,
                "confidence": 0.9,
            }
            for i, w in enumerate(words)
        ],
    }


def _dg_results(
    text: str, request_id: str, start: float, duration: float, is_final: bool
) -> dict[str, Any]:
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "start": start,
        "duration": duration,
        "is_final": is_final,
        "speech_final": is_final,
        "channel": {"alternatives": [_dg_alternative(text, start, duration)]},
        "metadata": {"request_id": request_id, "model_info": {"name": "fake"}},
    }


def _read_wav(data: bytes) -> tuple[NDArray[np.int16], int]:
    with wave.open(io.BytesIO(data)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        if w.getnchannels() > 1:
            pcm = pcm[:: w.getnchannels()]
        return pcm, w.getframerate()


@functools.lru_cache(maxsize=128)
def synthesized(text: str, rate: int) -> bytes:
    """Piper's PCM for ``text``, kept: a text spoken again streams back at once."""
    return synthesize(text, rate).tobytes()


async def _speech_chunks(text: str, rate: int) -> AsyncIterator[bytes]:
    if not text.strip():
        return
    pcm = await asyncio.to_thread(synthesized, text.strip(), rate)
    step = int(rate * CHUNK_S) * 2
    for i in range(0, len(pcm), step):
        yield pcm[i : i + step]


async def _stream_pcm(
    request: web.Request, text: str, rate: int, content_type: str
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    await resp.prepare(request)
    async for chunk in _speech_chunks(text, rate):
        await resp.write(chunk)
    await resp.write_eof()
    return resp
