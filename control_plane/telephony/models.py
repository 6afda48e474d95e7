"""Phone numbers and calls: tables and HTTP shapes.

A phone call is a voice session with channel ``phone``; its ``PhoneCall`` row adds who called
whom, the direction and how the call went. The transcript is the session's turns.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, field_validator
from sqlalchemy import JSON, String, Text
from sqlmodel import Field, SQLModel

from control_plane.models import TurnPublic, new_id, utcnow
from stimm.schema import AnsweredBy, SessionStatus

Direction = Literal["inbound", "outbound"]
CallOutcome = Literal["ringing", "answered", "completed", "failed", "busy", "no-answer"]

_NUMBER_PATTERN = r"^\+?[0-9A-Za-z*#._-]{2,32}$"


def _ip_or_network(value: str) -> str:
    """An IP address or CIDR range, as LiveKit SIP matches a call's source address against."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address or CIDR range (e.g. 203.0.113.5 or 203.0.113.0/24)"
        ) from None
    return value


AllowedAddresses = list[Annotated[str, AfterValidator(_ip_or_network)]]


# --- phone numbers ----------------------------------------------------------------------------


class PhoneNumberBase(SQLModel):
    number: str = Field(max_length=32, unique=True, index=True)
    agent_id: str = Field(foreign_key="agent.id", max_length=36)
    name: str | None = Field(default=None, max_length=100)
    allowed_addresses: list[str] = Field(default_factory=list, sa_type=JSON)
    auth_username: str | None = Field(default=None, max_length=100)


class PhoneNumber(PhoneNumberBase, table=True):
    """A number callers dial; it rings the agent ``agent_id``."""

    __tablename__ = "phone_number"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    auth_password: str | None = Field(default=None, sa_type=Text)
    """The digest password, encrypted with the control plane's ``SecretBox``."""
    trunk_id: str | None = Field(default=None, max_length=64)
    dispatch_rule_id: str | None = Field(default=None, max_length=64)
    created_at: AwareDatetime = Field(default_factory=utcnow)
    updated_at: AwareDatetime = Field(default_factory=utcnow)


class PhoneNumberCreate(BaseModel):
    """Body of ``POST /api/phone-numbers``."""

    model_config = ConfigDict(extra="forbid")

    number: str = pydantic.Field(pattern=_NUMBER_PATTERN, examples=["+15550100"])
    agent_id: str
    name: str | None = pydantic.Field(default=None, max_length=100)
    allowed_addresses: AllowedAddresses = pydantic.Field(
        default_factory=list, max_length=50, description="IPs or CIDR ranges; empty: any"
    )
    auth_username: str | None = pydantic.Field(default=None, min_length=1, max_length=100)
    auth_password: str | None = pydantic.Field(default=None, min_length=8, max_length=200)

    @field_validator("auth_password")
    @classmethod
    def _not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must not be blank")
        return v


class PhoneNumberUpdate(BaseModel):
    """Body of ``PATCH /api/phone-numbers/{id}``."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str | None = None
    name: str | None = pydantic.Field(default=None, max_length=100)
    allowed_addresses: AllowedAddresses | None = pydantic.Field(default=None, max_length=50)
    auth_username: str | None = pydantic.Field(default=None, max_length=100)
    auth_password: str | None = pydantic.Field(default=None, min_length=8, max_length=200)


class PhoneNumberPublic(PhoneNumberBase):
    """A phone number as the API shows it (the digest password is never returned)."""

    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_serialization_defaults_required=True
    )

    id: str
    auth: bool
    trunk_id: str | None
    dispatch_rule_id: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: PhoneNumber) -> PhoneNumberPublic:
        return cls.model_validate({**row.model_dump(), "auth": bool(row.auth_password)})


class PhoneNumbersPublic(BaseModel):
    items: list[PhoneNumberPublic]
    count: int


# --- calls ------------------------------------------------------------------------------------


class PhoneCall(SQLModel, table=True):
    """The phone side of a voice session: who called whom and how it went."""

    __tablename__ = "phone_call"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    session_id: str = Field(
        foreign_key="session.id", ondelete="CASCADE", unique=True, max_length=36
    )
    direction: Direction = Field(sa_type=String(16))
    caller: str | None = Field(default=None, max_length=64)
    callee: str | None = Field(default=None, max_length=64)
    outcome: CallOutcome = Field(default="ringing", sa_type=String(16))
    sip_status: int | None = None
    failure_reason: str | None = Field(default=None, sa_type=Text)
    sip_call_id: str | None = Field(default=None, max_length=200)
    answered_by: AnsweredBy | None = Field(default=None, sa_type=String(16))
    """Who answered an outbound call, when the agent detects answering machines."""
    campaign_id: str | None = Field(default=None, max_length=36, index=True)
    created_at: AwareDatetime = Field(default_factory=utcnow, index=True)


class CallCreate(BaseModel):
    """Body of ``POST /api/calls``: have ``agent_id`` call ``to``."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str
    to: str = pydantic.Field(pattern=_NUMBER_PATTERN, examples=["+15550123"])


class CallPublic(BaseModel):
    """A call with its session's status and, when asked for one call, its transcript."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: str
    session_id: str
    agent_id: str
    room: str
    channel: str
    direction: Direction
    caller: str | None
    callee: str | None
    outcome: CallOutcome
    sip_status: int | None
    failure_reason: str | None
    answered_by: AnsweredBy | None
    campaign_id: str | None
    status: SessionStatus
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    turns: list[TurnPublic] | None = None


class CallsPublic(BaseModel):
    items: list[CallPublic]
    count: int


def call_public(
    call: PhoneCall, voice_session: Any, turns: list[TurnPublic] | None = None
) -> CallPublic:
    return CallPublic(
        id=call.id,
        session_id=call.session_id,
        agent_id=voice_session.agent_id,
        room=voice_session.room,
        channel=voice_session.channel,
        direction=call.direction,
        caller=call.caller,
        callee=call.callee,
        outcome=_outcome(call, voice_session.status),
        sip_status=call.sip_status,
        failure_reason=call.failure_reason or voice_session.failure_reason,
        answered_by=call.answered_by,
        campaign_id=call.campaign_id,
        status=voice_session.status,
        created_at=call.created_at,
        started_at=voice_session.started_at,
        ended_at=voice_session.ended_at,
        turns=turns,
    )


def _outcome(call: PhoneCall, status: str) -> CallOutcome:
    """A call that was answered ends as its session does."""
    if call.outcome == "answered" and status in ("completed", "failed"):
        return "completed" if status == "completed" else "failed"
    return call.outcome
