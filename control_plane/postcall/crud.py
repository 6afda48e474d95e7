"""Database operations on analyses, webhook endpoints and deliveries ("not found" is ``None``)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.models import Agent, SessionPublic, Turn, VoiceSession, new_id, utcnow
from control_plane.postcall.models import (
    SessionAnalysis,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    analysis_public,
)
from stimm.schema import RecordingPolicy

# --- analysis ---------------------------------------------------------------------------------


async def get_analysis(db: AsyncSession, session_id: str) -> SessionAnalysis | None:
    return await db.get(SessionAnalysis, session_id)


# --- endpoints --------------------------------------------------------------------------------


async def list_endpoints(
    db: AsyncSession, *, limit: int = 500, offset: int = 0
) -> tuple[list[WebhookEndpoint], int]:
    count = (await db.exec(select(func.count()).select_from(WebhookEndpoint))).one()
    rows = await db.exec(
        select(WebhookEndpoint)
        .order_by(col(WebhookEndpoint.created_at).desc(), col(WebhookEndpoint.id))
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), count


async def get_endpoint(db: AsyncSession, endpoint_id: str) -> WebhookEndpoint | None:
    return await db.get(WebhookEndpoint, endpoint_id)


# --- deliveries -------------------------------------------------------------------------------


def event_body(event: WebhookEvent, event_id: str, data: dict[str, Any]) -> str:
    """The JSON body posted for an event (kept as sent: the signature covers these bytes)."""
    envelope = {"id": event_id, "type": event, "created_at": utcnow().isoformat(), "data": data}
    return json.dumps(envelope, separators=(",", ":"), default=str)


async def add_deliveries(
    db: AsyncSession, event: WebhookEvent, session_id: str, data: dict[str, Any]
) -> int:
    """Queue ``event`` of a session for every enabled endpoint that takes it, once per
    endpoint (an endpoint that already has it is skipped). Not committed."""
    key = f"{event}:{session_id}"
    endpoints = [
        e
        for e in (await db.exec(select(WebhookEndpoint).where(col(WebhookEndpoint.enabled)))).all()
        if event in e.events
    ]
    if not endpoints:
        return 0
    queued = set(
        (
            await db.exec(
                select(WebhookDelivery.endpoint_id).where(col(WebhookDelivery.event_key) == key)
            )
        ).all()
    )
    event_id = new_id()
    body = event_body(event, event_id, data)
    added = 0
    for endpoint in endpoints:
        if endpoint.id in queued:
            continue
        db.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                event=event,
                event_id=event_id,
                event_key=key,
                session_id=session_id,
                body=body,
            )
        )
        added += 1
    return added


async def list_deliveries(
    db: AsyncSession, endpoint_id: str, *, status: str | None, limit: int, offset: int
) -> tuple[list[WebhookDelivery], int]:
    conditions = [col(WebhookDelivery.endpoint_id) == endpoint_id]
    if status is not None:
        conditions.append(col(WebhookDelivery.status) == status)
    count = (
        await db.exec(select(func.count()).select_from(WebhookDelivery).where(*conditions))
    ).one()
    rows = await db.exec(
        select(WebhookDelivery)
        .where(*conditions)
        .order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id))
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), count


async def get_delivery(
    db: AsyncSession, endpoint_id: str, delivery_id: str
) -> WebhookDelivery | None:
    row = await db.get(WebhookDelivery, delivery_id)
    return row if row is not None and row.endpoint_id == endpoint_id else None


async def resend(db: AsyncSession, delivery: WebhookDelivery) -> WebhookDelivery:
    """Queue the same event (same body, same event id) again as a new delivery."""
    copy = WebhookDelivery(
        endpoint_id=delivery.endpoint_id,
        event=delivery.event,
        event_id=delivery.event_id,
        session_id=delivery.session_id,
        body=delivery.body,
        resent_from=delivery.id,
    )
    db.add(copy)
    await db.commit()
    return copy


# --- event payloads ---------------------------------------------------------------------------


async def session_data(db: AsyncSession, voice_session: VoiceSession) -> dict[str, Any]:
    return SessionPublic.model_validate(voice_session, from_attributes=True).model_dump(mode="json")


async def session_ended_data(db: AsyncSession, voice_session: VoiceSession) -> dict[str, Any]:
    """What ``session.ended`` carries: the session and its outcome, the transcript, the
    analysis (``null`` when the agent has none) and the recording link.

    The recording is uploaded just after the outcome, so the link is the API path that answers
    with a fresh signed URL once it is there (``GET /api/sessions/{id}/recording``, API key),
    not a signed URL that would expire before anyone follows it; ``null`` when the agent does
    not record.
    """
    turns = (
        await db.exec(
            select(Turn).where(col(Turn.session_id) == voice_session.id).order_by(col(Turn.seq))
        )
    ).all()
    analysis = await get_analysis(db, voice_session.id)
    return {
        "session": await session_data(db, voice_session),
        "outcome": {"status": voice_session.status, "reason": voice_session.failure_reason},
        "transcript": [
            {
                "seq": t.seq,
                "role": t.role,
                "text": t.text,
                "started_at": t.started_at.isoformat() if t.started_at else None,
                "ended_at": t.ended_at.isoformat() if t.ended_at else None,
            }
            for t in turns
        ],
        "analysis": analysis_public(analysis).model_dump(mode="json") if analysis else None,
        "recording_url": (
            f"/api/sessions/{voice_session.id}/recording"
            if await _records(db, voice_session.agent_id)
            else None
        ),
    }


async def _records(db: AsyncSession, agent_id: str) -> bool:
    agent = await db.get(Agent, agent_id)
    return agent is not None and RecordingPolicy.model_validate(agent.recording or {}).enabled


# --- filters on sessions ----------------------------------------------------------------------


def analysis_filter(
    status: str | None, field: str | None, value: str | None
) -> ColumnElement[bool] | None:
    """Sessions whose analysis has ``status``, and whose field ``field`` is ``value``
    (``true``/``false`` for booleans, a number for numbers; text matches when it contains
    ``value``, ignoring case). ``None`` when nothing is asked."""
    conditions: list[ColumnElement[bool]] = []
    if status is not None:
        conditions.append(col(SessionAnalysis.status) == status)
    if field is not None:
        item = col(SessionAnalysis.data)[field]
        if value is None:
            conditions.append(item.as_string().is_not(None))
        elif value.lower() in ("true", "false"):
            conditions.append(item.as_boolean() == (value.lower() == "true"))
        elif _is_number(value):
            conditions.append(item.as_float() == float(value))
        else:
            conditions.append(func.lower(item.as_string()).contains(value.lower()))
    if not conditions:
        return None
    return col(VoiceSession.id).in_(select(SessionAnalysis.session_id).where(*conditions))


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


async def analyses_of(db: AsyncSession, session_ids: list[str]) -> dict[str, SessionAnalysis]:
    if not session_ids:
        return {}
    rows = await db.exec(
        select(SessionAnalysis).where(col(SessionAnalysis.session_id).in_(session_ids))
    )
    return {row.session_id: row for row in rows.all()}
