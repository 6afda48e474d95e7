"""HTTP models of the Workers view."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from stimm.schema import WorkerHeartbeat


class WorkerPublic(WorkerHeartbeat):
    """A live worker: its last heartbeat and when it arrived."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    last_seen_at: datetime
    full: bool
    """At or above its load threshold (or draining): LiveKit gives it no new job."""


class WorkersPublic(BaseModel):
    items: list[WorkerPublic]
    count: int
    sessions: int
    """Sessions running on all live workers."""
    capacity: int
    """Session slots of the live workers that are not draining."""
