"""Provider factories return the real livekit plugin objects, configured from the spec."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.agents import llm, stt, tts
from livekit.plugins import asyncai, deepgram, elevenlabs, openai

from stimm.schema import ProviderSpec
from worker.providers import (
    PROVIDERS,
    MissingApiKeyError,
    PiperTTS,
    UnknownProviderError,
    WhisperSTT,
    build_llm,
    build_stt,
    build_tts,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "OPENAI_API_KEY",
        "GROQ_API_KEY",
        "MISTRAL_API_KEY",
        "OPENROUTER_API_KEY",
        "DEEPGRAM_API_KEY",
        "ELEVEN_API_KEY",
        "ASYNCAI_API_KEY",
    ):
        monkeypatch.setenv(var, f"test-{var.lower()}")


def _spec(provider: str, model: str | None = None, **options: Any) -> ProviderSpec:
    return ProviderSpec(provider=provider, model=model, options=options)


def _llm_base_url(model: llm.LLM[Any]) -> str:
    assert isinstance(model, openai.LLM)
    return str(model._client.base_url).rstrip("/")


def _llm_api_key(model: llm.LLM[Any]) -> str:
    assert isinstance(model, openai.LLM)
    return model._client.api_key


@pytest.mark.parametrize(
    ("name", "cls"),
    [("local", WhisperSTT), ("deepgram", deepgram.STT), ("openai", openai.STT)],
)
async def test_stt_providers(name: str, cls: type[stt.STT[Any]]) -> None:
    built = build_stt(_spec(name), language="en")
    assert type(built) is cls
    await built.aclose()


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("local", PiperTTS),
        ("openai", openai.TTS),
        ("elevenlabs", elevenlabs.TTS),
        ("deepgram", deepgram.TTS),
        ("asyncai", asyncai.TTS),
    ],
)
async def test_tts_providers(name: str, cls: type[tts.TTS[Any]]) -> None:
    built = build_tts(_spec(name), voice=None, language="en")
    assert type(built) is cls
    await built.aclose()


@pytest.mark.parametrize(
    ("name", "base_url", "key"),
    [
        ("openai", "https://api.openai.com/v1", "test-openai_api_key"),
        ("groq", "https://api.groq.com/openai/v1", "test-groq_api_key"),
        ("mistral", "https://api.mistral.ai/v1", "test-mistral_api_key"),
        ("openrouter", "https://openrouter.ai/api/v1", "test-openrouter_api_key"),
        ("llamacpp", "http://127.0.0.1:8080/v1", "no-key"),
        ("ollama", "http://127.0.0.1:11434/v1", "no-key"),
    ],
)
async def test_llm_providers(name: str, base_url: str, key: str) -> None:
    built = build_llm(_spec(name))
    assert type(built) is openai.LLM
    assert _llm_base_url(built) == base_url
    assert _llm_api_key(built) == key
    await built.aclose()


def test_every_provider_is_listed() -> None:
    assert set(PROVIDERS["stt"]) == {"local", "deepgram", "openai"}
    assert set(PROVIDERS["llm"]) == {
        "openai",
        "groq",
        "mistral",
        "openrouter",
        "llamacpp",
        "ollama",
        "local",
    }
    assert set(PROVIDERS["tts"]) == {
        "local",
        "openai",
        "elevenlabs",
        "deepgram",
        "asyncai",
        "kokoro",
    }


@pytest.mark.parametrize(
    ("build", "role"),
    [
        (lambda s: build_stt(s, language="en"), "stt"),
        (build_llm, "llm"),
        (lambda s: build_tts(s, voice=None, language="en"), "tts"),
    ],
)
def test_unknown_provider(build: Any, role: str) -> None:
    with pytest.raises(UnknownProviderError, match="acme-speech") as info:
        build(_spec("acme-speech"))
    assert info.value.role == role
    assert info.value.provider == "acme-speech"
    assert role in str(info.value)
    assert isinstance(info.value, ValueError)


async def test_options_override_llm_base_url_key_model_and_temperature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STIMM_EGRESS_ALLOW", "10.0.0.0/8")  # a server on the private network
    built = build_llm(
        _spec(
            "ollama",
            "qwen2.5:3b",
            base_url="http://10.0.0.5:11434/v1",
            api_key="secret",
            temperature=0.2,
        )
    )
    assert isinstance(built, openai.LLM)
    assert _llm_base_url(built) == "http://10.0.0.5:11434/v1"
    assert _llm_api_key(built) == "secret"
    assert built.model == "qwen2.5:3b"
    assert built._opts.temperature == 0.2
    await built.aclose()


async def test_option_key_wins_over_environment() -> None:
    built = build_llm(_spec("groq", api_key="from-options"))
    assert _llm_api_key(built) == "from-options"
    await built.aclose()


def test_hosted_llm_without_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Falling back to OPENAI_API_KEY would send the OpenAI key to Groq.
    monkeypatch.delenv("GROQ_API_KEY")
    with pytest.raises(MissingApiKeyError, match="GROQ_API_KEY"):
        build_llm(_spec("groq"))


async def test_plugin_options_reach_the_plugins() -> None:
    dg_stt = build_stt(
        _spec("deepgram", "nova-2", base_url="http://127.0.0.1:9/v1/listen", api_key="k"),
        language="en",
    )
    assert isinstance(dg_stt, deepgram.STT)
    assert dg_stt.model == "nova-2"
    assert dg_stt._api_key == "k"
    assert dg_stt._opts.endpoint_url == "http://127.0.0.1:9/v1/listen"

    dg_tts = build_tts(
        _spec("deepgram", base_url="http://127.0.0.1:9/v1/speak"),
        voice="aura-2-thalia-en",
        language="en",
    )
    assert isinstance(dg_tts, deepgram.TTS)
    assert dg_tts._opts.model == "aura-2-thalia-en"
    assert dg_tts._opts.base_url == "http://127.0.0.1:9/v1/speak"

    eleven = build_tts(
        _spec("elevenlabs", base_url="http://127.0.0.1:9/v1"), voice="voice-123", language="en"
    )
    assert isinstance(eleven, elevenlabs.TTS)
    assert eleven._opts.voice_id == "voice-123"
    assert eleven._opts.base_url == "http://127.0.0.1:9/v1"

    oai_tts = build_tts(
        _spec("openai", "tts-1", base_url="http://127.0.0.1:9/v1", speed=1.2),
        voice="nova",
        language="en",
    )
    assert isinstance(oai_tts, openai.TTS)
    assert oai_tts._opts.voice == "nova"
    assert oai_tts._opts.speed == 1.2
    assert str(oai_tts._client.base_url).rstrip("/") == "http://127.0.0.1:9/v1"

    for obj in (dg_stt, dg_tts, eleven, oai_tts):
        await obj.aclose()


def test_local_tts_rejects_unknown_voice() -> None:
    with pytest.raises(ValueError, match="unknown Piper voice"):
        build_tts(_spec("local"), voice="en_GB-nobody-low", language="en")


def test_hosted_asyncai_without_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASYNCAI_API_KEY")
    with pytest.raises(MissingApiKeyError, match="ASYNCAI_API_KEY") as info:
        build_tts(_spec("asyncai"), voice=None, language="en")
    assert (info.value.role, info.value.provider) == ("tts", "asyncai")


async def test_asyncai_options_reach_the_plugin() -> None:
    hosted = build_tts(_spec("asyncai"), voice="voice-uuid", language="fr-CA")
    assert isinstance(hosted, asyncai.TTS)
    assert hosted._opts.api_key == "test-asyncai_api_key"
    assert hosted._opts.voice == "voice-uuid"
    assert hosted._opts.language == "fr"  # Async takes language codes, not locales
    assert hosted.sample_rate == 32_000

    proxied = build_tts(
        _spec("asyncai", "async_flash_v1.0", base_url="http://127.0.0.1:9"),
        voice=None,
        language="en",
    )
    assert isinstance(proxied, asyncai.TTS)
    assert proxied._opts.base_url == "http://127.0.0.1:9"
    assert proxied._opts.api_key == "no-key"  # the hosted key stays home
    assert proxied.model == "async_flash_v1.0"
    for obj in (hosted, proxied):
        await obj.aclose()


def test_kokoro_without_a_server_is_refused() -> None:
    # openai.TTS would otherwise send the text to api.openai.com
    with pytest.raises(ValueError, match="options.base_url"):
        build_tts(_spec("kokoro"), voice=None, language="en")


async def test_kokoro_is_openai_tts_on_its_own_server_without_a_hosted_key() -> None:
    built = build_tts(
        _spec("kokoro", base_url="http://127.0.0.1:8880/v1", speed=1.1), voice=None, language="en"
    )
    assert type(built) is openai.TTS
    assert str(built._client.base_url).rstrip("/") == "http://127.0.0.1:8880/v1"
    assert built._client.api_key == "no-key"  # OPENAI_API_KEY is set, and not sent
    assert (built._opts.model, built._opts.voice) == ("kokoro", "af_heart")
    assert (built._opts.response_format, built._opts.speed) == ("pcm", 1.1)
    await built.aclose()


def test_session_llms_load_no_certificates_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # each context loads the CA bundle (~18 ms of CPU) as a call starts; a process needs one
    import ssl

    build_llm(_spec("groq"))  # the process's first
    made: list[object] = []
    create = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(args)
        return create(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    for name in ("groq", "openai", "local"):
        build_llm(_spec(name))
    assert made == []
