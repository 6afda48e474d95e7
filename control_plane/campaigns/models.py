"""Campaigns: an agent phones a list of numbers, each row with its own variables.

A campaign's rows are its queue (``campaign_row``): a row is taken with a lease by one
control-plane replica; each call it places is a ``campaign_attempt`` whose key
(``<row id>:<attempt>``) is unique, so an attempt is dialled at most once however often the
control plane restarts.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal

import pydantic
from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator, model_validator
from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from control_plane.models import new_id, utcnow

CampaignStatus = Literal["draft", "running", "paused", "cancelled", "completed"]
RowStatus = Literal["pending", "calling", "done", "cancelled"]
AttemptOutcome = Literal["answered", "voicemail", "busy", "no-answer", "failed"]
"""``answered``: a human (or nobody could tell) took the call; ``voicemail``: a machine did."""
RetryOn = Literal["busy", "no-answer", "voicemail"]
DEFAULT_RETRY_ON: tuple[RetryOn, ...] = ("busy", "no-answer")


class CampaignSettings(BaseModel):
    """What a campaign does, as created (and shown)."""

    model_config = ConfigDict(extra="forbid")

    name: str = pydantic.Field(min_length=1, max_length=100)
    agent_id: str
    concurrency: int = pydantic.Field(default=1, ge=1, le=50)
    """At most this many of the campaign's calls at once."""
    window_start: time = time(9, 0)
    window_end: time = time(20, 0)
    """Calls start only between these times in the callee's time zone (``end`` < ``start``
    spans midnight)."""
    timezone: str = pydantic.Field(default="UTC", max_length=64)
    """The time zone of a row with no ``timezone`` column whose number does not tell one."""
    max_attempts: int = pydantic.Field(default=1, ge=1, le=10)
    retry_on: list[RetryOn] = pydantic.Field(default_factory=lambda: list(DEFAULT_RETRY_ON))
    retry_delay_s: float = pydantic.Field(default=300.0, ge=0.0, le=7 * 86_400.0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from control_plane.campaigns.rows import zone_problem

        if problem := zone_problem(v):
            raise ValueError(problem)
        return v


class CampaignCreate(CampaignSettings):
    """Body of ``POST /api/campaigns``: the settings and the CSV of numbers."""

    csv: str = pydantic.Field(min_length=1, max_length=5_000_000)
    """A header row with ``phone_number`` (E.164) and optionally ``timezone``; every other
    column is a variable for ``{column}`` placeholders in the agent's texts."""
    start: bool = True
    """Start calling at once; otherwise the campaign is a ``draft`` until started."""

    @model_validator(mode="after")
    def _window(self) -> CampaignCreate:
        if self.window_start == self.window_end:
            raise ValueError("window_start and window_end must differ")
        return self


class Campaign(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=100)
    agent_id: str = Field(foreign_key="agent.id", ondelete="CASCADE", max_length=36, index=True)
    status: CampaignStatus = Field(default="running", sa_type=String(16))
    concurrency: int = 1
    window_start: str = Field(max_length=8)
    window_end: str = Field(max_length=8)
    timezone: str = Field(default="UTC", max_length=64)
    max_attempts: int = 1
    retry_on: list[str] = Field(default_factory=list, sa_type=JSON)
    retry_delay_s: float = 300.0
    columns: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: AwareDatetime = Field(default_factory=utcnow, index=True)
    updated_at: AwareDatetime = Field(default_factory=utcnow)


class CampaignRow(SQLModel, table=True):
    __tablename__ = "campaign_row"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    campaign_id: str = Field(
        foreign_key="campaign.id", ondelete="CASCADE", max_length=36, index=True
    )
    position: int
    """The row's line in the CSV (the header is line 1)."""
    number: str = Field(max_length=32)
    timezone: str = Field(max_length=64)
    variables: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    status: RowStatus = Field(default="pending", sa_type=String(16), index=True)
    attempts: int = 0
    outcome: AttemptOutcome | None = Field(default=None, sa_type=String(16))
    failure_reason: str | None = Field(default=None, sa_type=Text)
    next_attempt_at: AwareDatetime = Field(default_factory=utcnow)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: AwareDatetime | None = None
    updated_at: AwareDatetime = Field(default_factory=utcnow)


class CampaignAttempt(SQLModel, table=True):
    __tablename__ = "campaign_attempt"
    __table_args__ = (UniqueConstraint("key", name="uq_campaign_attempt_key"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    row_id: str = Field(
        foreign_key="campaign_row.id", ondelete="CASCADE", max_length=36, index=True
    )
    number: int
    key: str = Field(max_length=80)
    """``<row id>:<attempt number>``: the same attempt is never dialled twice."""
    call_id: str | None = Field(default=None, max_length=36)
    session_id: str | None = Field(default=None, max_length=36)
    outcome: AttemptOutcome | None = Field(default=None, sa_type=String(16))
    started_at: AwareDatetime = Field(default_factory=utcnow)
    ended_at: AwareDatetime | None = None


# --- HTTP shapes ------------------------------------------------------------------------------


class CampaignProgress(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    total: int
    pending: int
    calling: int
    done: int
    cancelled: int
    outcomes: dict[str, int]
    """Finished rows per outcome."""
    calls: int
    """Calls placed so far (every attempt)."""


class CampaignPublic(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: str
    name: str
    agent_id: str
    status: CampaignStatus
    concurrency: int
    window_start: str
    window_end: str
    timezone: str
    max_attempts: int
    retry_on: list[RetryOn]
    retry_delay_s: float
    columns: list[str]
    created_at: datetime
    updated_at: datetime
    progress: CampaignProgress


class CampaignsPublic(BaseModel):
    items: list[CampaignPublic]
    count: int


class CampaignAttemptPublic(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    number: int
    call_id: str | None
    outcome: AttemptOutcome | None
    started_at: datetime
    ended_at: datetime | None


class CampaignRowPublic(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: str
    position: int
    number: str
    timezone: str
    variables: dict[str, str]
    status: RowStatus
    attempts: int
    outcome: AttemptOutcome | None
    failure_reason: str | None
    next_attempt_at: datetime
    calls: list[CampaignAttemptPublic]


class CampaignRowsPublic(BaseModel):
    items: list[CampaignRowPublic]
    count: int
