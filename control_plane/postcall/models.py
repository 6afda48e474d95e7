"""Post-call tables and HTTP shapes: a session's analysis, webhook endpoints and deliveries.

Analyses and deliveries are queues (``control_plane.jobs.QueuedJob``): a row is the job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from control_plane.jobs import QueuedJob
from control_plane.models import SessionPublicWithTurns, new_id, utcnow
from stimm.schema import HttpUrl

WebhookEvent = Literal["session.started", "session.ended", "analysis.completed"]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = (
    "session.started",
    "session.ended",
    "analysis.completed",
)

AnalysisStatus = Literal["pending", "running", "succeeded", "failed"]
DeliveryStatus = Literal["pending", "running", "succeeded", "failed"]


# --- analysis ---------------------------------------------------------------------------------


class SessionAnalysis(QueuedJob, table=True):
    """The analysis of one ended session by its agent's LLM (a job until it is done)."""

    __tablename__ = "session_analysis"

    session_id: str = Field(
        foreign_key="session.id", ondelete="CASCADE", primary_key=True, max_length=36
    )
    summary: str | None = Field(default=None, sa_type=Text)
    data: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    """The extracted fields, validated against the agent's ``analysis.fields``."""
    created_at: AwareDatetime = Field(default_factory=utcnow)
    completed_at: AwareDatetime | None = None


class SessionAnalysisPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )

    status: AnalysisStatus
    summary: str | None = None
    data: dict[str, Any] | None = PydanticField(
        default=None, description="The extracted fields; null until done or when it failed"
    )
    error: str | None = PydanticField(
        default=None, description="Why the analysis failed (or why its last attempt did)"
    )
    attempts: int
    completed_at: datetime | None = None


def analysis_public(row: SessionAnalysis) -> SessionAnalysisPublic:
    return SessionAnalysisPublic(
        status=row.status,  # type: ignore[arg-type]
        summary=row.summary,
        data=row.data,
        error=row.last_error,
        attempts=row.attempts,
        completed_at=row.completed_at,
    )


class SessionPublicWithAnalysis(SessionPublicWithTurns):
    """A session with its transcript and its post-call analysis (``null`` when none)."""

    analysis: SessionAnalysisPublic | None = None


# --- webhook endpoints ------------------------------------------------------------------------


class WebhookEndpoint(SQLModel, table=True):
    """Where a deployment's events are posted; its signing secret is in the secrets store."""

    __tablename__ = "webhook_endpoint"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    url: str = Field(max_length=2_000)
    description: str | None = Field(default=None, max_length=200)
    events: list[str] = Field(default_factory=list, sa_type=JSON)
    enabled: bool = True
    secret_name: str = Field(max_length=64)
    created_at: AwareDatetime = Field(default_factory=utcnow)
    updated_at: AwareDatetime = Field(default_factory=utcnow)


_SECRET = PydanticField(
    default=None,
    min_length=16,
    max_length=200,
    description="The signing secret; generated when not given (returned once, at creation)",
)


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl
    events: list[WebhookEvent] = PydanticField(min_length=1, max_length=len(WEBHOOK_EVENTS))
    description: str | None = PydanticField(default=None, max_length=200)
    enabled: bool = True
    secret: str | None = _SECRET


class WebhookEndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = None
    events: list[WebhookEvent] | None = PydanticField(
        default=None, min_length=1, max_length=len(WEBHOOK_EVENTS)
    )
    description: str | None = PydanticField(default=None, max_length=200)
    enabled: bool | None = None
    secret: str | None = _SECRET


class WebhookEndpointPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )

    id: str
    url: str
    description: str | None = None
    events: list[WebhookEvent]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointPublic):
    """The one response that carries the signing secret."""

    secret: str


class WebhookEndpointsPublic(BaseModel):
    items: list[WebhookEndpointPublic]
    count: int


# --- deliveries -------------------------------------------------------------------------------


class WebhookDelivery(QueuedJob, table=True):
    """One event for one endpoint: the exact body, and how its delivery went."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_key", name="uq_webhook_delivery_event"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    endpoint_id: str = Field(
        foreign_key="webhook_endpoint.id", ondelete="CASCADE", index=True, max_length=36
    )
    event: str = Field(sa_type=String(32))
    event_id: str = Field(max_length=36)
    """The event's id: the same for every endpoint and every resend (receivers dedupe on it)."""
    event_key: str | None = Field(default=None, max_length=100)
    """``<event>:<session id>``, unique per endpoint, so an event is queued once; ``None`` for
    a resend."""
    session_id: str | None = Field(default=None, max_length=36, index=True)
    body: str = Field(sa_type=Text)
    last_status_code: int | None = None
    delivered_at: AwareDatetime | None = None
    resent_from: str | None = Field(default=None, max_length=36)
    created_at: AwareDatetime = Field(default_factory=utcnow, index=True)


class WebhookDeliveryPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )

    id: str
    endpoint_id: str
    event: WebhookEvent
    event_id: str
    session_id: str | None = None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = PydanticField(
        default=None, description="When the next attempt is due (while pending)"
    )
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    resent_from: str | None = None
    created_at: datetime
    payload: dict[str, Any]


class WebhookDeliveriesPublic(BaseModel):
    items: list[WebhookDeliveryPublic]
    count: int
