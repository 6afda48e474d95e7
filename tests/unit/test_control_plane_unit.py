"""Control plane pieces that need no server: settings rules, token scoping, schema agreement."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from livekit import api
from pydantic import SecretStr

from control_plane.core.config import Settings
from control_plane.core.db import SQLITE_BUSY_TIMEOUT_S, create_engine
from control_plane.errors import ConfigError
from control_plane.livekit import LiveKit
from control_plane.models import AgentBase, AgentPublic
from stimm.schema import AgentConfig

pytestmark = pytest.mark.unit

SECRET = "s" * 40
WORKER_TOKEN = "w" * 24
SECRET_KEY = "pQ3vX9-kT_2mZr7LwB0yNc4Hs8JdFa6Eu1GiKo5Vt"  # as secrets.token_urlsafe(32) makes
ENV_NAMES = [
    "STIMM_DATABASE_URL",
    "STIMM_REDIS_URL",
    "LIVEKIT_URL",
    "LIVEKIT_PUBLIC_URL",
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "STIMM_WORKER_TOKEN",
    "STIMM_SESSION_TOKEN_TTL",
    "STIMM_DEV",
    "STIMM_SECRET_KEY",
    "STIMM_BOOTSTRAP_API_KEY",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def production_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "livekit_api_key": "APIprod",
        "livekit_api_secret": SECRET,
        "worker_token": WORKER_TOKEN,
        "secret_key": SECRET_KEY,
        **overrides,
    }
    return Settings(**values)


# --- settings ---------------------------------------------------------------------------------


def test_constructor_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_URL", "http://from-env:7880")
    monkeypatch.setenv("STIMM_SESSION_TOKEN_TTL", "120")
    from_env = production_settings()
    assert from_env.livekit_url == "http://from-env:7880"
    assert from_env.session_token_ttl_s == 120

    explicit = production_settings(livekit_url="https://lk.example.org", session_token_ttl_s=300)
    assert explicit.livekit_url == "https://lk.example.org"
    assert explicit.session_token_ttl_s == 300


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"livekit_api_secret": "too-short"}, "LIVEKIT_API_SECRET"),
        ({"livekit_api_secret": "changeme-" + "x" * 40}, "LIVEKIT_API_SECRET"),
        ({"livekit_api_secret": ""}, "LIVEKIT_API_SECRET"),
        ({"livekit_api_key": ""}, "LIVEKIT_API_KEY"),
        ({"livekit_api_key": "devkey"}, "LIVEKIT_API_KEY"),
        ({"worker_token": ""}, "STIMM_WORKER_TOKEN"),
        ({"worker_token": "short"}, "STIMM_WORKER_TOKEN"),
        ({"worker_token": "stimm-dev-worker-token"}, "STIMM_WORKER_TOKEN"),
        ({"secret_key": ""}, "STIMM_SECRET_KEY"),
        ({"secret_key": "short"}, "STIMM_SECRET_KEY"),
        ({"secret_key": "stimm-dev-secret-key-not-for-production"}, "STIMM_SECRET_KEY"),
        ({"bootstrap_api_key": "too-short"}, "STIMM_BOOTSTRAP_API_KEY"),
    ],
)
def test_unsafe_secrets_are_refused_outside_dev_mode(overrides: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=names) as raised:
        production_settings(**overrides)
    assert "STIMM_DEV" in str(raised.value)


@pytest.mark.parametrize(
    "weak", ["a" * 32, "ab" * 32, "0123456789" * 4, "password" * 5, "abcdefghij" * 4]
)
def test_a_predictable_secret_key_is_refused_with_how_to_make_one(weak: str) -> None:
    with pytest.raises(ConfigError, match="STIMM_SECRET_KEY is too predictable") as raised:
        production_settings(secret_key=weak)
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in str(raised.value)


def test_random_secret_keys_are_accepted() -> None:
    for _ in range(200):
        for key in (secrets.token_urlsafe(32), secrets.token_hex(32)):
            production_settings(secret_key=key)


def test_dev_mode_fills_in_the_documented_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STIMM_DEV", "1")
    settings = Settings()
    assert settings.livekit_api_key == "devkey"
    assert settings.livekit_api_secret.get_secret_value() == "secret"
    assert settings.worker_token.get_secret_value() == "stimm-dev-worker-token"
    assert settings.database_url == "sqlite+aiosqlite:///.stimm/stimm.db"

    # What is set still wins in dev mode.
    custom = Settings(worker_token=SecretStr("mine"))
    assert custom.worker_token.get_secret_value() == "mine"


def test_empty_environment_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STIMM_DATABASE_URL", "")
    monkeypatch.setenv("LIVEKIT_PUBLIC_URL", "")
    settings = production_settings()
    assert settings.database_url == "sqlite+aiosqlite:///.stimm/stimm.db"
    assert settings.livekit_public_url == "ws://127.0.0.1:7880"


@pytest.mark.parametrize(
    ("livekit_url", "public_url", "expected"),
    [
        ("http://127.0.0.1:7880", None, "ws://127.0.0.1:7880"),
        ("https://lk.example.org/", None, "wss://lk.example.org"),
        ("ws://livekit:7880", None, "ws://livekit:7880"),
        ("http://livekit:7880", "wss://voice.example.org", "wss://voice.example.org"),
    ],
)
def test_public_livekit_url(livekit_url: str, public_url: str | None, expected: str) -> None:
    overrides: dict[str, Any] = {"livekit_url": livekit_url}
    if public_url is not None:
        overrides["livekit_public_url"] = public_url
    assert production_settings(**overrides).livekit_public_url == expected


def test_livekit_url_needs_a_scheme() -> None:
    with pytest.raises(ConfigError, match="http"):
        production_settings(livekit_url="livekit:7880")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db/stimm", "postgresql+asyncpg://u:p@db/stimm"),
        ("postgresql://u:p@db:5432/stimm", "postgresql+asyncpg://u:p@db:5432/stimm"),
        ("sqlite:////var/lib/stimm/stimm.db", "sqlite+aiosqlite:////var/lib/stimm/stimm.db"),
    ],
)
def test_database_urls_get_the_async_driver(url: str, expected: str) -> None:
    assert production_settings(database_url=url).database_url == expected


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ConfigError, match="mysql"):
        production_settings(database_url="mysql://u:p@db/stimm")


# --- participant tokens -----------------------------------------------------------------------


def test_participant_token_opens_exactly_one_room_for_the_configured_ttl() -> None:
    settings = production_settings(session_token_ttl_s=900)
    before = datetime.now(UTC)
    issued = LiveKit(settings).participant_token("stimm-abc", "web-123")

    claims = api.TokenVerifier("APIprod", SECRET).verify(issued.jwt)
    assert claims.identity == "web-123"
    video = claims.video
    assert video is not None
    assert video.room == "stimm-abc"
    assert video.room_join
    assert video.can_publish and video.can_subscribe and video.can_publish_data
    assert not video.room_admin and not video.room_create and not video.room_list
    assert not video.room_record and not video.agent

    raw = jwt.decode(issued.jwt, options={"verify_signature": False})
    assert raw["exp"] - raw["nbf"] == 900
    assert abs(raw["exp"] - issued.expires_at.timestamp()) <= 1
    assert issued.expires_at - before <= timedelta(seconds=901)


def test_participant_token_is_signed_with_the_api_secret() -> None:
    issued = LiveKit(production_settings()).participant_token("stimm-abc", "web-123")
    with pytest.raises(jwt.InvalidSignatureError):
        api.TokenVerifier("APIprod", "x" * 40).verify(issued.jwt)


# --- one agent schema -------------------------------------------------------------------------


def test_stored_agent_fields_are_exactly_the_agent_config() -> None:
    assert set(AgentBase.model_fields) == set(AgentConfig.model_fields)
    assert set(AgentPublic.model_fields) == set(AgentConfig.model_fields) | {
        "id",
        "is_default",
        "created_at",
        "updated_at",
    }


async def test_sqlite_writers_wait_for_each_other_instead_of_failing(tmp_path: Path) -> None:
    """A burst of session requests on the SQLite dev database queues its writes (write-ahead
    log, a 30 s busy wait) instead of answering 503 "database is locked" after SQLite's 5 s."""
    engine = create_engine(f"sqlite:///{tmp_path / 'stimm.db'}")
    try:
        async with engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            busy_ms = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    finally:
        await engine.dispose()
    assert mode == "wal"
    assert busy_ms == SQLITE_BUSY_TIMEOUT_S * 1000
