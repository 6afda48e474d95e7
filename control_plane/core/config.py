"""Control plane settings: constructor arguments win over environment variables.

Dev mode (``STIMM_DEV=1``) fills in these documented, *insecure* defaults for anything unset:

- ``LIVEKIT_API_KEY=devkey`` / ``LIVEKIT_API_SECRET=secret`` (what ``livekit-server --dev`` uses)
- ``STIMM_WORKER_TOKEN=stimm-dev-worker-token``
- ``STIMM_SECRET_KEY=stimm-dev-secret-key-not-for-production`` (encrypts stored provider keys)

Outside dev mode these values, other placeholders and short secrets are refused at startup.
"""

from __future__ import annotations

import math
from collections import Counter

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from control_plane.errors import ConfigError
from control_plane.knowledge.config import KnowledgeSettings
from control_plane.postcall.config import PostCallSettings
from control_plane.recordings.config import RecordingSettings
from control_plane.telephony.config import TelephonySettings
from control_plane.workers.config import PoolSettings

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///.stimm/stimm.db"
DEV_LIVEKIT_API_KEY = "devkey"
DEV_LIVEKIT_API_SECRET = "secret"
DEV_WORKER_TOKEN = "stimm-dev-worker-token"
DEV_SECRET_KEY = "stimm-dev-secret-key-not-for-production"

MIN_LIVEKIT_SECRET_LENGTH = 32
MIN_WORKER_TOKEN_LENGTH = 16
MIN_SECRET_KEY_LENGTH = 32
MIN_API_KEY_LENGTH = 24
DEFAULT_MAX_JSON_BODY_BYTES = 1024 * 1024
MIN_SECRET_KEY_BITS = 128
GENERATE_SECRET_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'

_PLACEHOLDERS = {DEV_LIVEKIT_API_KEY, DEV_LIVEKIT_API_SECRET, DEV_WORKER_TOKEN, DEV_SECRET_KEY}
_PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "replace-me", "placeholder")

# Drivers we run with; the plain URLs people paste from compose files are mapped onto them.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def normalize_database_url(url: str) -> str:
    """Return ``url`` with the async driver the control plane uses (aiosqlite or asyncpg)."""
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise ConfigError(f"STIMM_DATABASE_URL is not a database URL: {e}") from e
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ConfigError(
            f"Unsupported database driver {parsed.drivername!r} in STIMM_DATABASE_URL; "
            "use postgresql+asyncpg://... or sqlite+aiosqlite:///path/to/stimm.db"
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def _looks_like_placeholder(value: str) -> bool:
    lowered = value.lower()
    return lowered in _PLACEHOLDERS or any(m in lowered for m in _PLACEHOLDER_MARKERS)


def estimated_entropy_bits(value: str) -> float:
    """Bits of entropy a string shows: the Shannon entropy of its characters times its length,
    counting a repeated pattern once.

    Random keys score near their real entropy (``secrets.token_urlsafe(32)``: about 200 bits);
    32 times "a" scores 0 and "0123456789" four times 33.
    """
    n = len(value)
    period = next((p for p in range(1, n) if value == (value[:p] * (n // p + 1))[:n]), n)
    pattern = value[:period]
    return -sum(c * math.log2(c / period) for c in Counter(pattern).values())


class DatabaseSettings(BaseSettings):
    """The part of the settings that migrations need; it holds no secrets."""

    # An empty variable (as compose files and process managers often pass) means "unset".
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", env_ignore_empty=True)

    database_url: str = Field(default=DEFAULT_DATABASE_URL, validation_alias="STIMM_DATABASE_URL")

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalize_database_url(value)


class StoreSettings(DatabaseSettings):
    """The stores the control plane's processes share, the CLI's writes included; no secrets."""

    redis_url: str | None = Field(default=None, validation_alias="STIMM_REDIS_URL")


class Settings(StoreSettings):
    """Everything the control plane is configured with: the one settings object
    ``create_app`` wires the control plane from (its parts per domain included)."""

    livekit_url: str = Field(default="http://127.0.0.1:7880", validation_alias="LIVEKIT_URL")
    # Empty means "derive from livekit_url" (http -> ws, https -> wss).
    livekit_public_url: str = Field(default="", validation_alias="LIVEKIT_PUBLIC_URL")
    livekit_api_key: str = Field(default="", validation_alias="LIVEKIT_API_KEY")
    livekit_api_secret: SecretStr = Field(
        default=SecretStr(""), validation_alias="LIVEKIT_API_SECRET"
    )
    worker_token: SecretStr = Field(default=SecretStr(""), validation_alias="STIMM_WORKER_TOKEN")
    secret_key: SecretStr = Field(default=SecretStr(""), validation_alias="STIMM_SECRET_KEY")
    """Encrypts the provider keys stored through ``/api/secrets``."""
    bootstrap_api_key: SecretStr = Field(
        default=SecretStr(""), validation_alias="STIMM_BOOTSTRAP_API_KEY"
    )
    """The first API key, registered when the database has none; generated when empty."""
    session_token_ttl_s: int = Field(
        default=600, ge=30, le=86_400, validation_alias="STIMM_SESSION_TOKEN_TTL"
    )
    max_json_body_bytes: int = Field(
        default=DEFAULT_MAX_JSON_BODY_BYTES, ge=1024, validation_alias="STIMM_MAX_JSON_BODY_BYTES"
    )
    """The largest request body accepted, uploads aside (their limit is the knowledge
    settings' ``STIMM_MAX_UPLOAD_BYTES``); larger ones get 413 before they are read whole."""
    dev: bool = Field(default=False, validation_alias="STIMM_DEV")
    requests_per_minute_per_key: int = Field(
        default=1_200, ge=0, validation_alias="STIMM_REQUESTS_PER_MINUTE_PER_KEY"
    )
    """Requests one API key may make per minute (0: no limit); more get 429 + Retry-After."""
    sessions_per_minute_per_key: int = Field(
        default=30, ge=0, validation_alias="STIMM_SESSIONS_PER_MINUTE_PER_KEY"
    )
    """Sessions one API key may start per minute (0: no limit)."""
    max_concurrent_sessions_per_key: int = Field(
        default=20, ge=0, validation_alias="STIMM_MAX_CONCURRENT_SESSIONS_PER_KEY"
    )
    """Sessions one API key (or one publishable key) may have open at once (0: no limit)."""
    widget_sessions_per_minute_per_key: int = Field(
        default=30, ge=0, validation_alias="STIMM_WIDGET_SESSIONS_PER_MINUTE_PER_KEY"
    )
    """Sessions one publishable key's widget may start per minute, all visitors together."""
    widget_sessions_per_minute_per_address: int = Field(
        default=5, ge=0, validation_alias="STIMM_WIDGET_SESSIONS_PER_MINUTE_PER_ADDRESS"
    )
    """Sessions one client address may start per minute through the widget (0: no limit)."""
    scenario_timeout_s: float = Field(
        default=300.0, ge=5.0, le=3_600.0, validation_alias="STIMM_SCENARIO_TIMEOUT_S"
    )
    """How long one run of an agent's test scenarios may take before it is stopped."""
    scenario_max_runs: int = Field(
        default=2, ge=1, le=64, validation_alias="STIMM_SCENARIO_MAX_RUNS"
    )
    """Scenario runs at once per control-plane process (each is a child process)."""
    campaign_lease_s: float = Field(
        default=30.0, ge=2.0, le=600.0, validation_alias="STIMM_CAMPAIGN_LEASE_S"
    )
    """A campaign row being called is another control plane's for this long after its last
    renewal; then (that control plane stopped) it is taken over and its call watched to the end."""
    campaign_poll_s: float = Field(
        default=1.0, gt=0.0, le=60.0, validation_alias="STIMM_CAMPAIGN_POLL_S"
    )
    """How often the campaign runner looks for rows to call."""
    otlp_endpoint: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    """OTLP/HTTP base URL the control plane's request spans go to (``stimm/tracing.py``);
    unset: no tracing."""
    pool: PoolSettings = Field(default_factory=PoolSettings)
    """Worker pool view and dispatch verification (``STIMM_WORKER_TTL``, ...)."""
    telephony: TelephonySettings = Field(default_factory=TelephonySettings)
    """SIP addresses and outbound calling (``STIMM_SIP_*``)."""
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    """Vector store, upload size, ingestion bounds (``STIMM_QDRANT_*``, ``STIMM_INGESTION_*``)."""
    recordings: RecordingSettings = Field(default_factory=RecordingSettings)
    """Call recordings: folder or S3 bucket, URL lifetime, retention sweep, upload cap
    (``STIMM_RECORDINGS_*``, ``STIMM_RECORDING_URL_TTL``, ``STIMM_MAX_RECORDING_BYTES``)."""
    postcall: PostCallSettings = Field(default_factory=PostCallSettings)
    """Post-call analysis and webhook deliveries (``STIMM_ANALYSIS_*``, ``STIMM_WEBHOOK_*``)."""

    @field_validator("livekit_url", "livekit_public_url")
    @classmethod
    def _livekit_scheme(cls, value: str) -> str:
        if not value:
            return value
        if not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ConfigError(f"LiveKit URL {value!r} must start with http(s):// or ws(s)://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _complete_and_check(self) -> Settings:
        if not self.livekit_public_url:
            self.livekit_public_url = _to_websocket_url(self.livekit_url)
        if self.dev:
            self.livekit_api_key = self.livekit_api_key or DEV_LIVEKIT_API_KEY
            if not self.livekit_api_secret.get_secret_value():
                self.livekit_api_secret = SecretStr(DEV_LIVEKIT_API_SECRET)
            if not self.worker_token.get_secret_value():
                self.worker_token = SecretStr(DEV_WORKER_TOKEN)
            if not self.secret_key.get_secret_value():
                self.secret_key = SecretStr(DEV_SECRET_KEY)
            return self
        self._reject_unsafe_secrets()
        return self

    def _reject_unsafe_secrets(self) -> None:
        dev_hint = " (or set STIMM_DEV=1 for local development)"
        if not self.livekit_api_key or _looks_like_placeholder(self.livekit_api_key):
            raise ConfigError("LIVEKIT_API_KEY must be set to a real key" + dev_hint)
        secret = self.livekit_api_secret.get_secret_value()
        if len(secret) < MIN_LIVEKIT_SECRET_LENGTH or _looks_like_placeholder(secret):
            raise ConfigError(
                f"LIVEKIT_API_SECRET must be a non-placeholder secret of at least "
                f"{MIN_LIVEKIT_SECRET_LENGTH} characters" + dev_hint
            )
        token = self.worker_token.get_secret_value()
        if len(token) < MIN_WORKER_TOKEN_LENGTH or _looks_like_placeholder(token):
            raise ConfigError(
                f"STIMM_WORKER_TOKEN must be a non-placeholder token of at least "
                f"{MIN_WORKER_TOKEN_LENGTH} characters" + dev_hint
            )
        key = self.secret_key.get_secret_value()
        if len(key) < MIN_SECRET_KEY_LENGTH or _looks_like_placeholder(key):
            raise ConfigError(
                f"STIMM_SECRET_KEY must be a non-placeholder key of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters (it encrypts stored provider keys); "
                f"generate one with: {GENERATE_SECRET_KEY}" + dev_hint
            )
        if estimated_entropy_bits(key) < MIN_SECRET_KEY_BITS:
            raise ConfigError(
                f"STIMM_SECRET_KEY is too predictable (about {estimated_entropy_bits(key):.0f} "
                f"bits of entropy, {MIN_SECRET_KEY_BITS} needed: it encrypts stored provider "
                f"keys); generate a random one with: {GENERATE_SECRET_KEY}" + dev_hint
            )
        bootstrap = self.bootstrap_api_key.get_secret_value()
        too_weak = len(bootstrap) < MIN_API_KEY_LENGTH or _looks_like_placeholder(bootstrap)
        if bootstrap and too_weak:
            raise ConfigError(
                f"STIMM_BOOTSTRAP_API_KEY must be a non-placeholder key of at least "
                f"{MIN_API_KEY_LENGTH} characters, or unset" + dev_hint
            )


def _to_websocket_url(url: str) -> str:
    if url.startswith("https://"):
        return "wss://" + url.removeprefix("https://")
    if url.startswith("http://"):
        return "ws://" + url.removeprefix("http://")
    return url
