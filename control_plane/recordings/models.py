"""The recording of a session: table and HTTP shape. The audio itself lives in the store."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from control_plane.models import utcnow


class Recording(SQLModel, table=True):
    """One stereo Opus/OGG file per session: the caller left, the agent right."""

    session_id: str = Field(
        foreign_key="session.id", ondelete="CASCADE", primary_key=True, max_length=36
    )
    key: str = Field(max_length=200)
    """Where the store keeps the file (a path under the folder, or an object key)."""
    size_bytes: int = Field(sa_type=BigInteger)
    duration_s: float
    started_at: AwareDatetime
    """Wall time of the file's first sample: a turn's ``started_at`` minus this is its offset."""
    created_at: AwareDatetime = Field(default_factory=utcnow)
    expires_at: AwareDatetime = Field(index=True)
    """When the retention sweep deletes it (the agent's ``recording.retention_days``)."""


class RecordingPublic(BaseModel):
    """A session's recording and a short-lived URL that plays it (no API key needed)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    session_id: str
    duration_s: float
    size_bytes: int
    started_at: datetime
    expires_at: datetime
    channels: list[str] = ["caller", "agent"]
    """What each channel of the stereo file holds, left first."""
    url: str
    """``GET`` it for the audio (``audio/ogg``, byte ranges); valid until ``url_expires_at``."""
    url_expires_at: datetime
