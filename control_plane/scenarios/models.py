"""An agent's scenario file and its last run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Text
from sqlmodel import Field, SQLModel

from control_plane.models import utcnow
from stimm.scenarios import MAX_FILE_CHARS, SuiteResult


class AgentScenarios(SQLModel, table=True):
    __tablename__ = "agent_scenarios"

    agent_id: str = Field(
        foreign_key="agent.id", ondelete="CASCADE", primary_key=True, max_length=36
    )
    yaml: str = Field(sa_type=Text)
    """The file as the user wrote it (comments and order kept); valid when saved."""
    updated_at: AwareDatetime = Field(default_factory=utcnow)
    last_run: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    """The ``SuiteResult`` of the last run of this file; cleared when the file changes."""
    last_run_at: AwareDatetime | None = None


class ScenariosIn(BaseModel):
    """Body of ``PUT /api/agents/{id}/scenarios``."""

    model_config = ConfigDict(extra="forbid")

    yaml: str = PydanticField(max_length=MAX_FILE_CHARS, examples=["scenarios: [...]"])


class ScenariosPublic(BaseModel):
    """An agent's scenario file (empty when none is saved) and its last run."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    agent_id: str
    yaml: str = ""
    updated_at: datetime | None = None
    last_run: SuiteResult | None = None
    last_run_at: datetime | None = None
