"""The contract between the control plane and the worker.

Both services import these models; the control plane stores ``AgentConfig`` as-is and the
worker builds its pipeline from it. Keep this module small and free of service imports.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

AGENT_NAME = "stimm"
"""The LiveKit agent name every Stimm worker registers under (explicit dispatch)."""

Role = Literal["user", "assistant"]
Channel = Literal["web", "phone"]
SessionStatus = Literal["created", "active", "completed", "failed"]


class ProviderSpec(BaseModel):
    """One STT, LLM or TTS provider as stored in an agent's config."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, max_length=64, examples=["local"])
    model: str | None = Field(default=None, max_length=200)
    options: dict[str, Any] = Field(default_factory=dict)


class AgentConfig(BaseModel):
    """Everything the worker needs to run a conversation for one agent."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    instructions: str = Field(min_length=1, max_length=20_000)
    greeting: str | None = Field(default=None, max_length=2_000)
    language: str = Field(default="en", min_length=2, max_length=16)
    voice: str | None = Field(default=None, max_length=200)
    stt: ProviderSpec = Field(default_factory=lambda: ProviderSpec(provider="local"))
    llm: ProviderSpec
    tts: ProviderSpec = Field(default_factory=lambda: ProviderSpec(provider="local"))


class JobMetadata(BaseModel):
    """What the control plane puts in the LiveKit dispatch metadata."""

    agent_id: str
    session_id: str
    channel: Channel = "web"


class TurnMetrics(BaseModel):
    """Per-turn latency figures in seconds, as livekit-agents reports them."""

    end_of_turn_delay: float | None = None
    transcription_delay: float | None = None
    llm_ttft: float | None = None
    tts_ttfb: float | None = None
    e2e_latency: float | None = None


class TurnIn(BaseModel):
    """One finished conversation turn, posted by the worker."""

    role: Role
    text: str = Field(max_length=50_000)
    interrupted: bool = False
    started_at: datetime | None = None
    ended_at: datetime | None = None
    metrics: TurnMetrics = Field(default_factory=TurnMetrics)


class SessionEvent(BaseModel):
    """A session lifecycle change reported by the worker."""

    status: Literal["active", "completed", "failed"]
    reason: str | None = Field(default=None, max_length=2_000)
