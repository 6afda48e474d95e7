"""Publishable keys: the credential of the embeddable widget.

A publishable key is public by design (it sits in the HTML of every page that embeds the
widget), so it is stored as it is and the console can show its snippet at any time. It can
do one thing: start a web session with one of its agents, from one of its allowed origins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from control_plane.models import new_id, utcnow
from control_plane.widget.origins import normalize_origin

PUBLISHABLE_KEY_PREFIX = "stimm_pk_"

Origin = Annotated[str, AfterValidator(normalize_origin)]


class PublishableKey(SQLModel, table=True):
    """A key the widget sends; it starts sessions with ``agent_ids`` from ``allowed_origins``."""

    __tablename__ = "publishable_key"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=100)
    key: str = Field(max_length=64, unique=True)
    agent_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    allowed_origins: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: AwareDatetime = Field(default_factory=utcnow)
    revoked_at: AwareDatetime | None = None


class PublishableKeyCreate(BaseModel):
    """Body of ``POST /api/publishable-keys``."""

    model_config = ConfigDict(extra="forbid")

    name: str = PydanticField(min_length=1, max_length=100)
    agent_ids: list[str] = PydanticField(
        min_length=1, max_length=50, description="The agents the widget may start sessions with"
    )
    allowed_origins: list[Origin] = PydanticField(
        min_length=1,
        max_length=50,
        description="Sites that may embed the widget, as scheme://host[:port]",
    )

    @field_validator("agent_ids", "allowed_origins", mode="after")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(values))


class PublishableKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    key: str
    agent_ids: list[str]
    allowed_origins: list[str]
    created_at: datetime
    revoked_at: datetime | None


class PublishableKeysPublic(BaseModel):
    items: list[PublishableKeyPublic]
    count: int


class WidgetSessionCreate(BaseModel):
    """Body of ``POST /api/widget/sessions``: the agent, or none for the key's first agent."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str | None = None
