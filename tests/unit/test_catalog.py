"""Every catalog provider can be built by the worker, and the catalog judges specs as documented."""

from __future__ import annotations

import pytest

from stimm.catalog import CATALOG, SECRET_NAMES, check_spec, secrets_needed
from stimm.schema import ProviderSpec
from worker.providers.registry import PROVIDERS

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("role", ["stt", "llm", "tts"])
def test_catalog_names_are_the_registry_names(role: str) -> None:
    assert set(CATALOG[role]) == set(PROVIDERS[role])  # type: ignore[index]


def test_secret_names_are_the_environment_variables_plugins_read() -> None:
    assert set(SECRET_NAMES) == {
        "OPENAI_API_KEY",
        "DEEPGRAM_API_KEY",
        "ELEVEN_API_KEY",
        "ASYNCAI_API_KEY",
        "GROQ_API_KEY",
        "MISTRAL_API_KEY",
        "OPENROUTER_API_KEY",
    }
    assert CATALOG["stt"]["local"].secrets == () and CATALOG["tts"]["local"].secrets == ()


@pytest.mark.parametrize(
    ("role", "spec", "loc"),
    [
        ("llm", {"provider": "nope"}, ("provider",)),
        ("llm", {"provider": "groq", "model": "gpt-4o"}, ("model",)),
        ("llm", {"provider": "llamacpp"}, ("options", "base_url")),
        ("tts", {"provider": "kokoro"}, ("options", "base_url")),
        ("tts", {"provider": "asyncai", "model": "eleven_v3"}, ("model",)),
        ("tts", {"provider": "local", "options": {"speed": "fast"}}, ("options", "speed")),
        (
            "stt",
            {"provider": "local", "options": {"cpu_threads": True}},
            ("options", "cpu_threads"),
        ),
    ],
)
def test_bad_specs_name_the_field(role: str, spec: dict[str, object], loc: tuple[str, ...]) -> None:
    problems = check_spec(role, ProviderSpec.model_validate(spec))  # type: ignore[arg-type]
    assert [p.loc for p in problems] == [loc]


@pytest.mark.parametrize(
    ("role", "spec"),
    [
        (
            "llm",
            {"provider": "openai", "model": "scripted", "options": {"base_url": "http://x/v1"}},
        ),
        ("llm", {"provider": "openrouter", "model": "anthropic/claude-sonnet-4"}),
        ("llm", {"provider": "ollama", "model": "qwen3:4b"}),
        ("llm", {"provider": "groq", "options": {"temperature": 1}}),
        ("tts", {"provider": "deepgram", "model": "aura-2-thalia-en"}),
        ("tts", {"provider": "asyncai", "model": "async_flash_v1.0"}),
        (
            "tts",
            {"provider": "kokoro", "model": "kokoro", "options": {"base_url": "http://k:8880/v1"}},
        ),
        ("stt", {"provider": "local", "options": {"unknown": "passed through"}}),
    ],
)
def test_good_specs_pass(role: str, spec: dict[str, object]) -> None:
    assert check_spec(role, ProviderSpec.model_validate(spec)) == []  # type: ignore[arg-type]


def test_hosted_keys_never_go_to_a_custom_server() -> None:
    hosted = ProviderSpec(provider="groq")
    assert secrets_needed("llm", hosted) == ("GROQ_API_KEY",)
    own = ProviderSpec(provider="groq", options={"base_url": "http://127.0.0.1:9/v1"})
    assert secrets_needed("llm", own) == ()
    same = ProviderSpec(provider="groq", options={"base_url": "https://api.groq.com/openai/v1"})
    assert secrets_needed("llm", same) == ("GROQ_API_KEY",)


def test_kokoro_without_its_server_names_options_base_url() -> None:
    (problem,) = check_spec("tts", ProviderSpec(provider="kokoro"))
    assert problem.loc == ("options", "base_url") and problem.type == "missing"
    assert "options.base_url" in problem.message


def test_only_the_hosted_tts_needs_a_key() -> None:
    assert secrets_needed("tts", ProviderSpec(provider="asyncai")) == ("ASYNCAI_API_KEY",)
    kokoro = ProviderSpec(provider="kokoro", options={"base_url": "http://127.0.0.1:8880/v1"})
    assert secrets_needed("tts", kokoro) == ()
