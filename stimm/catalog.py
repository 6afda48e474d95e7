"""The provider catalog: every STT, LLM and TTS provider a Stimm worker can build.

The only provider table: the control plane validates agents, serves ``GET /api/providers`` and
picks the secrets a worker receives from it; the worker's registry takes each provider's default
model, base URL and key name from it. Provider names are the registry's keys; secret names are
the environment variables the plugins read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from stimm.egress import HTTP_SCHEMES, WEBSOCKET_SCHEMES, url_problem
from stimm.schema import ProviderRole, ProviderSpec

OptionType = Literal["string", "number", "integer", "boolean"]


@dataclass(frozen=True)
class ProviderOption:
    """One key of a provider spec's ``options``."""

    name: str
    type: OptionType
    description: str
    default: str | float | int | bool | None = None
    required: bool = False


@dataclass(frozen=True)
class Provider:
    """One provider of one role.

    ``models`` is ``None`` when any model name is accepted (local servers, routers with
    thousands of models). ``secrets`` are needed only when the provider's hosted endpoint is
    used: an OpenAI-compatible server given its own ``base_url`` accepts any model and gets no
    hosted key.
    """

    name: str
    label: str
    models: tuple[str, ...] | None
    default_model: str | None = None
    options: tuple[ProviderOption, ...] = ()
    secrets: tuple[str, ...] = ()
    openai_compatible: bool = False
    local: bool = False
    demo: bool = False
    """A small model that shows the path works but can make facts up; the console says so."""

    def option(self, name: str) -> ProviderOption | None:
        return next((o for o in self.options if o.name == name), None)

    @property
    def default_base_url(self) -> str | None:
        """The endpoint used when a spec sets no ``options.base_url`` (``None``: the plugin's
        own default)."""
        option = self.option("base_url")
        return None if option is None or option.default is None else str(option.default)

    @property
    def api_key_env(self) -> str | None:
        """The environment variable holding the hosted endpoint's key; ``None`` when the
        provider needs none."""
        return self.secrets[0] if self.secrets else None


LOCAL_LLM_MODEL = "smollm2-135m-instruct"
"""The model the embedded LLM (``stimm llm``) serves by default."""

_BASE_URL = ProviderOption(
    "base_url", "string", "Base URL of the provider's API, for a proxy or a self-hosted server"
)
_TEMPERATURE = ProviderOption("temperature", "number", "Sampling temperature")
_SPEED = ProviderOption("speed", "number", "Speaking rate, 1.0 is normal")
_LLM_OPTIONS = (_BASE_URL, _TEMPERATURE)


def _llm(
    name: str,
    label: str,
    models: tuple[str, ...] | None,
    default_model: str,
    secret: str | None,
    *,
    base_url: str | None,
    base_url_required: bool = False,
) -> Provider:
    url_option = ProviderOption(
        "base_url",
        "string",
        "Base URL of the OpenAI-compatible API",
        default=base_url,
        required=base_url_required,
    )
    return Provider(
        name=name,
        label=label,
        models=models,
        default_model=default_model,
        options=(url_option, _TEMPERATURE),
        secrets=(secret,) if secret else (),
        openai_compatible=True,
        local=secret is None,
    )


STT: dict[str, Provider] = {
    "local": Provider(
        name="local",
        label="Local Whisper (offline)",
        models=None,
        options=(
            ProviderOption("model_path", "string", "Folder of a faster-whisper model"),
            ProviderOption("compute_type", "string", "CTranslate2 compute type", default="int8"),
            ProviderOption("cpu_threads", "integer", "CPU threads for decoding"),
        ),
        local=True,
    ),
    "deepgram": Provider(
        name="deepgram",
        label="Deepgram",
        models=("nova-3", "nova-3-general", "nova-2", "nova-2-general", "nova-2-phonecall"),
        default_model="nova-3",
        options=(_BASE_URL,),
        secrets=("DEEPGRAM_API_KEY",),
    ),
    "openai": Provider(
        name="openai",
        label="OpenAI",
        models=("gpt-4o-transcribe", "gpt-4o-mini-transcribe", "whisper-1"),
        default_model="gpt-4o-mini-transcribe",
        options=(_BASE_URL,),
        secrets=("OPENAI_API_KEY",),
        openai_compatible=True,
    ),
}

LLM: dict[str, Provider] = {
    "openai": _llm(
        "openai",
        "OpenAI",
        ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "gpt-5", "gpt-5-mini"),
        "gpt-4.1-mini",
        "OPENAI_API_KEY",
        base_url=None,
    ),
    "groq": _llm(
        "groq",
        "Groq",
        ("llama-3.3-70b-versatile", "llama-3.1-8b-instant", "openai/gpt-oss-20b"),
        "llama-3.3-70b-versatile",
        "GROQ_API_KEY",
        base_url="https://api.groq.com/openai/v1",
    ),
    "mistral": _llm(
        "mistral",
        "Mistral",
        ("mistral-small-latest", "mistral-medium-latest", "mistral-large-latest"),
        "mistral-small-latest",
        "MISTRAL_API_KEY",
        base_url="https://api.mistral.ai/v1",
    ),
    "openrouter": _llm(
        "openrouter",
        "OpenRouter",
        None,
        "openai/gpt-4.1-mini",
        "OPENROUTER_API_KEY",
        base_url="https://openrouter.ai/api/v1",
    ),
    "llamacpp": _llm(
        "llamacpp",
        "llama.cpp server (self-hosted)",
        None,
        "local",
        None,
        base_url="http://127.0.0.1:8080/v1",
        # Where your llama-server runs is yours to say; a guessed address fails mid-call.
        base_url_required=True,
    ),
    "ollama": _llm(
        "ollama",
        "Ollama (self-hosted)",
        None,
        "llama3.2",
        None,
        base_url="http://127.0.0.1:11434/v1",
    ),
    "local": Provider(
        name="local",
        label="Local LLM (offline)",
        models=None,
        default_model=LOCAL_LLM_MODEL,
        options=(
            ProviderOption(
                "base_url",
                "string",
                "The embedded LLM's OpenAI-compatible URL; by default the worker's "
                "STIMM_LOCAL_LLM_URL (the local stack's `stimm llm`)",
            ),
            _TEMPERATURE,
            ProviderOption("max_tokens", "integer", "Longest reply in tokens"),
        ),
        openai_compatible=True,
        local=True,
        demo=True,
    ),
}

KOKORO_MODEL = "kokoro"
"""The model name Kokoro-FastAPI serves Kokoro under."""

TTS: dict[str, Provider] = {
    "local": Provider(
        name="local",
        label="Local Piper (offline)",
        models=None,
        options=(_SPEED,),
        local=True,
    ),
    "openai": Provider(
        name="openai",
        label="OpenAI",
        models=("gpt-4o-mini-tts", "tts-1", "tts-1-hd"),
        default_model="gpt-4o-mini-tts",
        options=(_BASE_URL, _SPEED),
        secrets=("OPENAI_API_KEY",),
        openai_compatible=True,
    ),
    "elevenlabs": Provider(
        name="elevenlabs",
        label="ElevenLabs",
        models=("eleven_flash_v2_5", "eleven_turbo_v2_5", "eleven_multilingual_v2", "eleven_v3"),
        default_model="eleven_flash_v2_5",
        options=(_BASE_URL,),
        secrets=("ELEVEN_API_KEY",),
    ),
    "deepgram": Provider(
        name="deepgram",
        label="Deepgram Aura",
        # The model names the voice ("aura-2-andromeda-en"); there are too many to list.
        models=None,
        default_model="aura-2-andromeda-en",
        options=(_BASE_URL,),
        secrets=("DEEPGRAM_API_KEY",),
    ),
    "asyncai": Provider(
        name="asyncai",
        label="Async.ai",
        models=("async_flash_v1.0", "asyncflow_v2.0", "asyncflow_multilingual_v1.0.0"),
        default_model="async_flash_v1.0",
        options=(_BASE_URL,),
        secrets=("ASYNCAI_API_KEY",),
    ),
    "kokoro": Provider(
        name="kokoro",
        label="Kokoro (self-hosted, OpenAI-compatible)",
        # Kokoro-FastAPI knows "kokoro", "tts-1" and "tts-1-hd"; other servers name their own.
        models=None,
        default_model=KOKORO_MODEL,
        options=(
            ProviderOption(
                "base_url",
                "string",
                "Base URL of your Kokoro server's OpenAI-compatible API",
                default="http://127.0.0.1:8880/v1",
                # Where your Kokoro server runs is yours to say; a guessed address fails mid-call.
                required=True,
            ),
            _SPEED,
        ),
        openai_compatible=True,
        local=True,
    ),
}

CATALOG: Mapping[ProviderRole, Mapping[str, Provider]] = {"stt": STT, "llm": LLM, "tts": TTS}
"""Every provider per role; the names equal the worker registry's ``PROVIDERS``."""

SECRET_NAMES: tuple[str, ...] = tuple(
    sorted({s for role in CATALOG.values() for p in role.values() for s in p.secrets})
)
"""Every secret some provider needs."""


@dataclass(frozen=True)
class SpecProblem:
    """Why a provider spec does not fit the catalog; ``loc`` is relative to the spec."""

    loc: tuple[str, ...]
    message: str
    type: str = field(default="value_error")


def uses_custom_server(provider: Provider, spec: ProviderSpec) -> bool:
    """An OpenAI-compatible provider pointed at another server than its hosted default."""
    base_url = spec.options.get("base_url")
    if not provider.openai_compatible or not base_url:
        return False
    default = provider.option("base_url")
    return default is None or base_url != default.default


_TYPES: dict[OptionType, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
}


def check_spec(role: ProviderRole, spec: ProviderSpec) -> list[SpecProblem]:
    """What is wrong with ``spec`` for ``role``: unknown provider or model, missing or mistyped
    options. Options the catalog does not list are passed through."""
    provider = CATALOG[role].get(spec.provider)
    if provider is None:
        known = ", ".join(CATALOG[role])
        return [SpecProblem(("provider",), f"Unknown {role} provider {spec.provider!r} ({known})")]
    problems: list[SpecProblem] = []
    if (
        spec.model is not None
        and provider.models is not None
        and spec.model not in provider.models
        and not uses_custom_server(provider, spec)
    ):
        problems.append(
            SpecProblem(
                ("model",),
                f"Unknown {provider.label} model {spec.model!r} "
                f"({', '.join(provider.models)}; or set options.base_url for your own server)",
            )
        )
    for option in provider.options:
        value = spec.options.get(option.name)
        if value is None or value == "":
            if option.required:
                problems.append(
                    SpecProblem(
                        ("options", option.name),
                        f"{provider.label} needs options.{option.name}: {option.description}",
                        "missing",
                    )
                )
            continue
        allowed = _TYPES[option.type]
        if not isinstance(value, allowed) or (option.type != "boolean" and isinstance(value, bool)):
            problems.append(
                SpecProblem(
                    ("options", option.name), f"options.{option.name} must be a {option.type}"
                )
            )
        elif option.name == "base_url":
            # OpenAI-compatible APIs are plain HTTP; the others also stream over WebSockets
            schemes = HTTP_SCHEMES if provider.openai_compatible else WEBSOCKET_SCHEMES
            problem = url_problem(str(value), schemes)
            if problem is not None:
                problems.append(
                    SpecProblem(("options", "base_url"), f"options.base_url: {problem}")
                )
    return problems


def secrets_needed(role: ProviderRole, spec: ProviderSpec) -> tuple[str, ...]:
    """The secrets a worker needs to build ``spec``; none for a custom OpenAI-compatible server,
    which must never receive a hosted provider's key."""
    provider = CATALOG[role].get(spec.provider)
    if provider is None or uses_custom_server(provider, spec):
        return ()
    return provider.secrets
