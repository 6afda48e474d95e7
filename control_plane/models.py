"""Database tables and HTTP shapes of the control plane.

An agent's fields and their validation are ``stimm.schema.AgentConfig``'s: request and response
models derive from it, and the table stores exactly its fields.

Over 300 lines on purpose: it follows the FastAPI full-stack template's one ``models.py`` of
the core domain (agents, sessions, turns, API keys, secrets, each ``XBase``/``XCreate``/
``XPublic``/``X(table=True)``); other domains (knowledge, telephony, workers) have their own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from stimm.schema import (
    AgentConfig,
    AnalysisConfig,
    Channel,
    ProviderSpec,
    RagOptions,
    RecordingPolicy,
    Role,
    SessionStatus,
    Tool,
    TurnMetrics,
    TurnTaking,
    VoicemailOptions,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


# --- agents -----------------------------------------------------------------------------------


class AgentBase(SQLModel):
    """An agent as stored: the fields of ``AgentConfig``, providers as JSON objects."""

    name: str = Field(max_length=100)
    instructions: str = Field(sa_type=Text)
    greeting: str | None = Field(default=None, sa_type=Text)
    language: str = Field(default="en", max_length=16)
    voice: str | None = Field(default=None, max_length=200)
    stt: list[dict[str, Any]] = Field(sa_type=JSON)
    llm: list[dict[str, Any]] = Field(sa_type=JSON)
    tts: list[dict[str, Any]] = Field(sa_type=JSON)
    turn_taking: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    tools: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    knowledge_base_id: str | None = Field(default=None, max_length=36)
    rag: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    recording: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    analysis: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    redact_pii: bool = False
    voicemail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)

    def to_config(self) -> AgentConfig:
        return AgentConfig.model_validate(self.model_dump(include=set(AgentConfig.model_fields)))


class AgentCreate(AgentConfig):
    """Body of ``POST /api/agents``: exactly the config the worker runs."""


class AgentUpdate(BaseModel):
    """Body of ``PATCH /api/agents/{id}``; the merged result is validated as ``AgentConfig``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    instructions: str | None = None
    greeting: str | None = None
    language: str | None = None
    voice: str | None = None
    stt: list[ProviderSpec] | None = None
    llm: list[ProviderSpec] | None = None
    tts: list[ProviderSpec] | None = None
    turn_taking: TurnTaking | None = None
    tools: list[Tool] | None = None
    knowledge_base_id: str | None = None
    rag: RagOptions | None = None
    recording: RecordingPolicy | None = None
    analysis: AnalysisConfig | None = None
    redact_pii: bool | None = None
    voicemail: VoicemailOptions | None = None

    @field_validator("stt", "llm", "tts", mode="before")
    @classmethod
    def _single_provider_is_a_list(cls, v: Any) -> Any:
        return AgentConfig._single_provider_is_a_list(v)


class Agent(AgentBase, table=True):
    __table_args__ = (
        # at most one default, however many requests make one at once
        Index(
            "uq_agent_one_default",
            "is_default",
            unique=True,
            postgresql_where=text("is_default"),
            sqlite_where=text("is_default"),
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    is_default: bool = False
    """The agent that answers when none is named (at most one; the first agent created)."""
    created_at: AwareDatetime = Field(default_factory=utcnow, index=True)
    updated_at: AwareDatetime = Field(default_factory=utcnow)


class AgentPublic(AgentConfig):
    model_config = ConfigDict(from_attributes=True)

    id: str
    is_default: bool = False
    created_at: datetime
    updated_at: datetime


class AgentsPublic(BaseModel):
    items: list[AgentPublic]
    count: int


# --- sessions ---------------------------------------------------------------------------------


class SessionBase(SQLModel):
    agent_id: str = Field(foreign_key="agent.id", index=True, max_length=36)
    room: str = Field(max_length=128)
    channel: Channel = Field(default="web", sa_type=String(16))
    status: SessionStatus = Field(default="created", sa_type=String(16))
    failure_reason: str | None = Field(default=None, sa_type=Text)
    """Why the session failed or was abandoned."""
    participant_identity: str | None = Field(default=None, max_length=128)
    turn_detection: str | None = Field(default=None, max_length=32)
    worker_id: str | None = Field(default=None, max_length=100)
    job_id: str | None = Field(default=None, max_length=100)
    """The LiveKit job that claimed the session: the only one that may answer it."""
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None


class VoiceSession(SessionBase, table=True):
    """One conversation with an agent, from a browser or a phone: a LiveKit room with the
    agent in it. The API calls it a session (``/api/sessions``)."""

    __tablename__ = "session"

    __table_args__ = (
        UniqueConstraint("room", name="uq_session_room"),
        UniqueConstraint("api_key_id", "idempotency_key", name="uq_session_api_key_idempotency"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    created_at: AwareDatetime = Field(default_factory=utcnow, index=True)
    api_key_id: str | None = Field(default=None, max_length=36, index=True)
    """The API key that started the session (its concurrent-session quota); ``None`` for phone
    calls and sessions from before quotas."""
    publishable_key_id: str | None = Field(default=None, max_length=36, index=True)
    """The publishable key whose widget started the session; ``None`` for other sessions."""
    dispatch_token: str | None = Field(default=None, max_length=64)
    """The token of the session's current dispatch (``JobMetadata.dispatch``): only a job of
    that dispatch may claim the session. ``None`` for sessions a SIP dispatch rule started."""
    idempotency_key: str | None = Field(default=None, max_length=128)
    """The client's ``Idempotency-Key``: a retried request with it (and the same API key)
    returns this session. Released (``None``) when the session failed to start, so that a
    retry starts it again."""
    livekit_node: str | None = Field(default=None, max_length=64)
    """The LiveKit node its room was placed on, as the node sweep first saw it
    (``livekit_nodes.py``): the call's media lives there."""


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str


class SessionCreated(BaseModel):
    """What a client needs to join the session's room."""

    session_id: str
    room: str
    livekit_url: str
    token: str
    expires_at: datetime


class SessionPublic(SessionBase):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_serialization_defaults_required=True
    )

    id: str
    created_at: datetime


class SessionsPublic(BaseModel):
    items: list[SessionPublic]
    count: int


# --- turns ------------------------------------------------------------------------------------


class TurnBase(SQLModel):
    role: Role = Field(sa_type=String(16))
    text: str = Field(sa_type=Text)
    interrupted: bool = False
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None


class Turn(TurnBase, table=True):
    """One finished utterance of a session, numbered from 1 in the order it was posted."""

    __table_args__ = (
        UniqueConstraint("session_id", "seq", name="uq_turn_session_seq"),
        UniqueConstraint("session_id", "key", name="uq_turn_session_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(foreign_key="session.id", ondelete="CASCADE", max_length=36)
    seq: int
    key: str | None = Field(default=None, max_length=64)
    """The worker's id for the turn (``TurnIn.key``): a retried post is stored once."""
    metrics: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: AwareDatetime = Field(default_factory=utcnow)


class TurnPublic(TurnBase):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_serialization_defaults_required=True
    )

    id: int
    session_id: str
    seq: int
    metrics: TurnMetrics
    created_at: datetime


class SessionPublicWithTurns(SessionPublic):
    turns: list[TurnPublic]


# --- API keys and secrets ---------------------------------------------------------------------


class ApiKey(SQLModel, table=True):
    """An API key; only its SHA-256 is stored."""

    __tablename__ = "api_key"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: AwareDatetime = Field(default_factory=utcnow)
    revoked_at: AwareDatetime | None = None


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = PydanticField(min_length=1, max_length=100)


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    """The one response that carries the key itself: it cannot be read again."""

    key: str


class ApiKeysPublic(BaseModel):
    items: list[ApiKeyPublic]
    count: int


class Secret(SQLModel, table=True):
    """A provider secret, Fernet-encrypted with ``STIMM_SECRET_KEY``."""

    name: str = Field(primary_key=True, max_length=64)
    ciphertext: str = Field(sa_type=Text)
    updated_at: AwareDatetime = Field(default_factory=utcnow)


class SecretIn(BaseModel):
    """Body of ``PUT /api/secrets/{name}``."""

    model_config = ConfigDict(extra="forbid")

    value: str = PydanticField(min_length=1, max_length=8_192)


class SecretStatus(BaseModel):
    """Whether a secret is set; its value is never returned."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    name: str
    set: bool
    updated_at: datetime | None = None
    used_by: list[str] = PydanticField(
        default_factory=list, description="Providers that need it, as role/provider"
    )


class SecretsPublic(BaseModel):
    items: list[SecretStatus]


# --- providers --------------------------------------------------------------------------------


class ProviderOptionPublic(BaseModel):
    name: str
    type: str
    description: str
    default: str | float | int | bool | None
    required: bool


class ProviderSecretPublic(BaseModel):
    name: str
    set: bool


class ProviderPublic(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    name: str
    label: str
    models: list[str] | None = PydanticField(
        description="Accepted model names; null when any name is accepted"
    )
    default_model: str | None
    options: list[ProviderOptionPublic]
    secrets: list[ProviderSecretPublic]
    local: bool
    openai_compatible: bool
    demo: bool = PydanticField(
        default=False,
        description="A small demo model: it shows the path works but can make facts up",
    )


class ProvidersPublic(BaseModel):
    stt: list[ProviderPublic]
    llm: list[ProviderPublic]
    tts: list[ProviderPublic]


# --- health -----------------------------------------------------------------------------------


class HealthStatus(BaseModel):
    """``ok`` or ``error: ...`` per dependency; ``not configured`` when it is not used."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    status: Literal["ok", "degraded", "error"]
    database: str
    redis: str = "not configured"
    qdrant: str = "not configured"
    livekit: str = "not configured"
