"""Factories keyed by provider name that build livekit STT, LLM and TTS objects.

Each factory returns the livekit plugin object as it is (``deepgram.STT``, ``openai.LLM``, ...),
configured from an agent's stored ``ProviderSpec``. OpenAI-compatible LLM servers (Groq,
Mistral, OpenRouter, llama.cpp, Ollama) all go through ``openai.LLM`` with their base URL.
Default models, base URLs and key names come from ``stimm.catalog``, the one provider table.

Plugins are imported here, at module level, because livekit only lets a plugin register itself
on the main thread: import this module when the worker starts, not inside a job.

Over 300 lines on purpose: one small factory per catalog provider (fifteen) plus the three
``build_*`` entry points, kept together as livekit-agents keeps its plugin table in one place;
each factory is a few lines and reads alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import httpx2
import openai as openai_sdk
from livekit.agents import llm, stt, tts
from livekit.plugins import asyncai, deepgram, elevenlabs, openai

from stimm.catalog import CATALOG, KOKORO_MODEL, LOCAL_LLM_MODEL
from stimm.egress import HTTP_SCHEMES, WEBSOCKET_SCHEMES, EgressPolicy
from stimm.local_llm import DEFAULT_PORT as LOCAL_LLM_PORT
from stimm.schema import ProviderRole, ProviderSpec
from stimm.tls import provider_tls_context

from .local_stt import WhisperSTT
from .local_tts import PiperTTS

AnySTT = stt.STT[Any]
"""Any livekit STT, whatever extra events it emits."""
AnyLLM = llm.LLM[Any]
"""Any livekit LLM, whatever extra events it emits."""
AnyTTS = tts.TTS[Any]
"""Any livekit TTS, whatever extra events it emits."""

Secrets = Mapping[str, str]
"""Provider keys by environment-variable name, as the control plane sends them."""

SttFactory = Callable[[ProviderSpec, str, Secrets], AnySTT]
"""(spec, language, secrets) -> STT"""
LlmFactory = Callable[[ProviderSpec, Secrets], AnyLLM]
"""(spec, secrets) -> LLM"""
TtsFactory = Callable[[ProviderSpec, str | None, str, Secrets], AnyTTS]
"""(spec, voice, language, secrets) -> TTS"""


class UnknownProviderError(ValueError):
    """An agent config names a provider this worker does not know for that role."""

    def __init__(self, role: ProviderRole, provider: str) -> None:
        known = ", ".join(sorted(PROVIDERS[role]))
        super().__init__(f"unknown {role} provider {provider!r} (known: {known})")
        self.role = role
        self.provider = provider


class MissingApiKeyError(ValueError):
    """A hosted provider was chosen but no key was found in its options, the agent's secrets
    or the environment."""

    def __init__(self, role: ProviderRole, provider: str, env_var: str) -> None:
        super().__init__(
            f"{role} provider {provider!r} needs an API key: store {env_var} in the console's "
            f"Secrets page (or PUT /api/secrets/{env_var}) or in the worker's environment"
        )
        self.role = role
        self.provider = provider


_NO_KEY = "no-key"
"""Sent to servers that ignore keys; the plugins refuse to start without one."""


def _option(spec: ProviderSpec, name: str) -> Any:
    value = spec.options.get(name)
    return None if value == "" else value


def _api_key(spec: ProviderSpec, env_var: str, secrets: Secrets) -> str | None:
    """The key from the spec's options, else the agent's secrets, else the environment."""
    key = _option(spec, "api_key")
    if key is not None:
        return str(key)
    return secrets.get(env_var) or os.environ.get(env_var) or None


def _hosted_key(role: ProviderRole, spec: ProviderSpec, secrets: Secrets) -> str:
    """The key to send to a hosted provider's endpoint (its catalog ``api_key_env``).

    With ``options.base_url`` set the endpoint is someone else's server (a proxy, a self-hosted
    clone, a test double): only a key written in the spec itself is sent there, never the
    provider's key from the secrets or the environment.

    Raises:
        MissingApiKeyError: If the provider's own endpoint is used and no key is found.
    """
    if _option(spec, "base_url") is not None:
        return str(_option(spec, "api_key") or _NO_KEY)
    env_var = CATALOG[role][spec.provider].api_key_env
    assert env_var is not None, f"{role} provider {spec.provider!r} has no key in the catalog"
    key = _api_key(spec, env_var, secrets)
    if key is None:
        raise MissingApiKeyError(role, spec.provider, env_var)
    return key


def check_base_url(role: ProviderRole, spec: ProviderSpec) -> None:
    """Refuse an ``options.base_url`` the egress policy (``STIMM_EGRESS_ALLOW``) does not let
    the worker reach: another scheme than http(s) (or ws(s) for WebSocket providers), a
    link-local or metadata address, a private one not allowed. The host is resolved now, when
    the session is built.

    Raises:
        EgressRefused: Saying why.
    """
    base_url = _option(spec, "base_url")
    provider = CATALOG[role].get(spec.provider)
    if base_url is None or provider is None:
        return
    schemes = HTTP_SCHEMES if provider.openai_compatible else WEBSOCKET_SCHEMES
    EgressPolicy.from_env().check_url(str(base_url), schemes)


def _kwargs(**values: Any) -> dict[str, Any]:
    """Keep only the values that were set, so the plugin's own defaults apply otherwise."""
    return {k: v for k, v in values.items() if v is not None}


# --- STT ---------------------------------------------------------------------------------


def _local_stt(spec: ProviderSpec, language: str, secrets: Secrets) -> AnySTT:
    return WhisperSTT(
        language=language,
        **_kwargs(
            model_path=_option(spec, "model_path"),
            compute_type=_option(spec, "compute_type"),
            cpu_threads=_option(spec, "cpu_threads"),
        ),
    )


def _deepgram_stt(spec: ProviderSpec, language: str, secrets: Secrets) -> AnySTT:
    endpointing = _option(spec, "endpointing_ms")
    return deepgram.STT(
        language=language,
        api_key=_hosted_key("stt", spec, secrets),
        **_kwargs(
            model=spec.model,
            base_url=_option(spec, "base_url"),
            endpointing_ms=int(endpointing) if endpointing is not None else None,
        ),
    )


def _openai_stt(spec: ProviderSpec, language: str, secrets: Secrets) -> AnySTT:
    return openai.STT(
        language=language,
        api_key=_hosted_key("stt", spec, secrets),
        **_kwargs(model=spec.model, base_url=_option(spec, "base_url")),
    )


# --- LLM ---------------------------------------------------------------------------------


OPENAI_COMPATIBLE_LLMS = ("openai", "groq", "mistral", "openrouter", "llamacpp", "ollama")
"""The catalog's LLMs reached through ``openai.LLM`` at their default base URL; ``local``, the
embedded LLM, has its own factory."""


def _openai_compatible_llm(name: str) -> LlmFactory:
    provider = CATALOG["llm"][name]
    default_url, key_env = provider.default_base_url, provider.api_key_env
    default_model = provider.default_model
    assert default_model is not None, f"llm provider {name!r} has no default model in the catalog"

    def build(spec: ProviderSpec, secrets: Secrets) -> AnyLLM:
        base_url = _option(spec, "base_url") or default_url
        if key_env is None or base_url != default_url:
            # A local or self-hosted server: only a key given in the spec is sent to it,
            # never the hosted provider's key from the environment.
            api_key = _option(spec, "api_key") or _NO_KEY
        else:
            api_key = _api_key(spec, key_env, secrets)
            if api_key is None:
                # Without this the OpenAI client would fall back to OPENAI_API_KEY and send
                # that key to another company's server.
                raise MissingApiKeyError("llm", name, key_env)
        temperature = _option(spec, "temperature")
        return _chat_llm(
            model=spec.model or default_model,
            api_key=api_key,
            base_url=base_url,
            temperature=float(temperature) if temperature is not None else None,
        )

    build.__name__ = f"_{name}_llm"
    return build


LOCAL_LLM_URL_ENV = "STIMM_LOCAL_LLM_URL"
"""Where this worker reaches the embedded LLM (``stimm llm``); the local stack and
``infra/compose.yml`` set it."""


def _local_llm(spec: ProviderSpec, secrets: Secrets) -> AnyLLM:
    """The embedded offline LLM, over HTTP like any OpenAI-compatible server. Its sampling
    defaults (temperature, repeat penalty, reply length, seed) are the server's."""
    base_url = _option(spec, "base_url") or os.environ.get(
        LOCAL_LLM_URL_ENV, f"http://127.0.0.1:{LOCAL_LLM_PORT}/v1"
    )
    temperature = _option(spec, "temperature")
    max_tokens = _option(spec, "max_tokens")
    return _chat_llm(
        model=spec.model or LOCAL_LLM_MODEL,
        api_key=_option(spec, "api_key") or _NO_KEY,
        base_url=base_url,
        temperature=float(temperature) if temperature is not None else None,
        max_completion_tokens=int(max_tokens) if max_tokens is not None else None,
    )


def _chat_llm(*, model: str, api_key: str, base_url: str | None, **options: Any) -> AnyLLM:
    """``openai.LLM`` on a client that uses the process's one TLS context for providers
    (``stimm/tls.py``).

    Left to itself the plugin builds a context, loading the CA bundle, for every session's LLM:
    the one context a job still built as its call started (~18 ms of CPU, held up to 0.9 s by
    8 calls starting at once). Timeouts and pool are the plugin's own client's; like that
    client, this one lives as long as the LLM object."""
    client = openai_sdk.AsyncClient(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,
        http_client=httpx2.AsyncClient(
            verify=provider_tls_context(),
            timeout=httpx2.Timeout(connect=15.0, read=5.0, write=5.0, pool=5.0),
            follow_redirects=True,
            limits=httpx2.Limits(
                max_connections=50, max_keepalive_connections=50, keepalive_expiry=120
            ),
        ),
    )
    return openai.LLM(model=model, client=client, **_kwargs(**options))


# --- TTS ---------------------------------------------------------------------------------


def _local_tts(spec: ProviderSpec, voice: str | None, language: str, secrets: Secrets) -> AnyTTS:
    speed = _option(spec, "speed")
    return PiperTTS(voice=voice, **_kwargs(speed=float(speed) if speed is not None else None))


def _openai_tts(spec: ProviderSpec, voice: str | None, language: str, secrets: Secrets) -> AnyTTS:
    speed = _option(spec, "speed")
    return openai.TTS(
        api_key=_hosted_key("tts", spec, secrets),
        # raw 24 kHz PCM: nothing to decode before the first frame plays
        response_format=_option(spec, "response_format") or "pcm",
        **_kwargs(
            model=spec.model,
            voice=voice,
            speed=float(speed) if speed is not None else None,
            base_url=_option(spec, "base_url"),
        ),
    )


def _elevenlabs_tts(
    spec: ProviderSpec, voice: str | None, language: str, secrets: Secrets
) -> AnyTTS:
    return elevenlabs.TTS(
        language=language,
        api_key=_hosted_key("tts", spec, secrets),
        encoding=_option(spec, "encoding") or "pcm_24000",
        **_kwargs(voice_id=voice, model=spec.model, base_url=_option(spec, "base_url")),
    )


def _deepgram_tts(spec: ProviderSpec, voice: str | None, language: str, secrets: Secrets) -> AnyTTS:
    # Deepgram names a voice by its model ("aura-2-andromeda-en").
    return deepgram.TTS(
        api_key=_hosted_key("tts", spec, secrets),
        **_kwargs(model=spec.model or voice, base_url=_option(spec, "base_url")),
    )


def _asyncai_tts(spec: ProviderSpec, voice: str | None, language: str, secrets: Secrets) -> AnyTTS:
    # Streaming only: the plugin's synthesize() raises, the session uses stream(). Its default
    # pcm_s16le encoding stays, since the plugin hands every encoding on as 16-bit PCM.
    return asyncai.TTS(
        api_key=_hosted_key("tts", spec, secrets),
        # Async takes ISO 639-1 codes ("en"), not locales ("en-US")
        language=language.split("-")[0].lower(),
        **_kwargs(model=spec.model, voice=voice, base_url=_option(spec, "base_url")),
    )


KOKORO_VOICE = "af_heart"
"""Kokoro's voice when the agent names none; OpenAI's voice names mean nothing to it."""


def _kokoro_tts(spec: ProviderSpec, voice: str | None, language: str, secrets: Secrets) -> AnyTTS:
    base_url = _option(spec, "base_url")
    if base_url is None:
        # openai.TTS would otherwise send the text to api.openai.com
        raise ValueError("tts provider 'kokoro' needs options.base_url (your Kokoro server)")
    speed = _option(spec, "speed")
    return openai.TTS(
        # a self-hosted server: only a key written in the spec is ever sent to it
        api_key=str(_option(spec, "api_key") or _NO_KEY),
        base_url=str(base_url),
        model=spec.model or KOKORO_MODEL,
        voice=voice or KOKORO_VOICE,
        # raw 24 kHz PCM, which Kokoro-FastAPI streams as it synthesizes
        response_format=_option(spec, "response_format") or "pcm",
        **_kwargs(speed=float(speed) if speed is not None else None),
    )


# --- tables ------------------------------------------------------------------------------

STT_PROVIDERS: dict[str, SttFactory] = {
    "local": _local_stt,
    "deepgram": _deepgram_stt,
    "openai": _openai_stt,
}
LLM_PROVIDERS: dict[str, LlmFactory] = {
    **{name: _openai_compatible_llm(name) for name in OPENAI_COMPATIBLE_LLMS},
    "local": _local_llm,
}
TTS_PROVIDERS: dict[str, TtsFactory] = {
    "local": _local_tts,
    "openai": _openai_tts,
    "elevenlabs": _elevenlabs_tts,
    "deepgram": _deepgram_tts,
    "asyncai": _asyncai_tts,
    "kokoro": _kokoro_tts,
}
PROVIDERS: dict[ProviderRole, Mapping[str, Callable[..., Any]]] = {
    "stt": STT_PROVIDERS,
    "llm": LLM_PROVIDERS,
    "tts": TTS_PROVIDERS,
}
"""Every provider name per role, for listing in the control plane."""


def build_stt(spec: ProviderSpec, *, language: str, secrets: Secrets | None = None) -> AnySTT:
    """Build the speech-to-text engine an agent config asks for.

    Args:
        spec: The stored provider spec (``provider``, ``model``, ``options``).
        language: The agent's language, e.g. ``"en"``.
        secrets: Provider keys by environment-variable name (from the control plane); they
            win over the process environment.

    Returns:
        A livekit STT; ``local`` is non-streaming and needs a VAD in the session.

    Raises:
        UnknownProviderError: If ``spec.provider`` is not an STT provider.
        MissingApiKeyError: If a hosted provider has no key.
        EgressRefused: If ``options.base_url`` is not allowed by the egress policy.
    """
    factory = STT_PROVIDERS.get(spec.provider)
    if factory is None:
        raise UnknownProviderError("stt", spec.provider)
    check_base_url("stt", spec)
    return factory(spec, language, secrets or {})


def build_llm(spec: ProviderSpec, *, secrets: Secrets | None = None) -> AnyLLM:
    """Build the chat model an agent config asks for.

    Args:
        spec: The stored provider spec. ``options`` may carry ``base_url``, ``api_key`` and
            ``temperature``.
        secrets: Provider keys by environment-variable name; they win over the environment.

    Returns:
        A livekit ``openai.LLM`` pointed at the provider's OpenAI-compatible endpoint.

    Raises:
        UnknownProviderError: If ``spec.provider`` is not an LLM provider.
        MissingApiKeyError: If a hosted provider has no key.
        EgressRefused: If ``options.base_url`` is not allowed by the egress policy.
    """
    factory = LLM_PROVIDERS.get(spec.provider)
    if factory is None:
        raise UnknownProviderError("llm", spec.provider)
    check_base_url("llm", spec)
    return factory(spec, secrets or {})


def build_tts(
    spec: ProviderSpec, *, voice: str | None, language: str, secrets: Secrets | None = None
) -> AnyTTS:
    """Build the text-to-speech engine an agent config asks for.

    Args:
        spec: The stored provider spec.
        voice: The agent's voice (a provider-specific name or id), or ``None`` for the
            provider's default.
        language: The agent's language, e.g. ``"en"``.
        secrets: Provider keys by environment-variable name; they win over the environment.

    Returns:
        A livekit TTS.

    Raises:
        UnknownProviderError: If ``spec.provider`` is not a TTS provider.
        MissingApiKeyError: If a hosted provider has no key.
        EgressRefused: If ``options.base_url`` is not allowed by the egress policy.
        ValueError: If the provider rejects the voice (``local`` has one bundled voice) or a
            self-hosted provider (``kokoro``) has no ``options.base_url``.
    """
    factory = TTS_PROVIDERS.get(spec.provider)
    if factory is None:
        raise UnknownProviderError("tts", spec.provider)
    check_base_url("tts", spec)
    return factory(spec, voice, language, secrets or {})
