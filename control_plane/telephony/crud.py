"""Database operations for phone numbers and calls; "not found" is ``None``."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.models import VoiceSession, new_id
from control_plane.telephony.models import Direction, PhoneCall, PhoneNumber
from stimm.schema import AnsweredBy


async def get_phone_number(db: AsyncSession, number_id: str) -> PhoneNumber | None:
    return await db.get(PhoneNumber, number_id)


async def find_phone_number(db: AsyncSession, number: str) -> PhoneNumber | None:
    rows = await db.exec(select(PhoneNumber).where(col(PhoneNumber.number) == number))
    return rows.first()


async def list_phone_numbers(db: AsyncSession) -> list[PhoneNumber]:
    rows = await db.exec(select(PhoneNumber).order_by(col(PhoneNumber.number)))
    return list(rows.all())


async def create_phone_call(
    db: AsyncSession,
    *,
    agent_id: str,
    direction: Direction,
    room: str | None = None,
    caller: str | None = None,
    callee: str | None = None,
    sip_call_id: str | None = None,
    participant_identity: str | None = None,
    campaign_id: str | None = None,
) -> tuple[VoiceSession, PhoneCall]:
    """A session with channel ``phone`` and its call record, committed together."""
    session_id = new_id()
    voice_session = VoiceSession(
        id=session_id,
        agent_id=agent_id,
        room=room or f"stimm-{session_id}",
        channel="phone",
        status="created",
        participant_identity=participant_identity,
    )
    call = PhoneCall(
        session_id=session_id,
        direction=direction,
        caller=caller,
        callee=callee,
        sip_call_id=sip_call_id,
        campaign_id=campaign_id,
        outcome="answered" if direction == "inbound" else "ringing",
    )
    db.add(voice_session)
    await db.flush()
    db.add(call)
    await db.commit()
    return voice_session, call


async def set_answered_by(db: AsyncSession, session_id: str, answered_by: AnsweredBy) -> None:
    call = (await db.exec(select(PhoneCall).where(col(PhoneCall.session_id) == session_id))).first()
    if call is not None:
        call.answered_by = answered_by
        db.add(call)
        await db.commit()


async def get_call(db: AsyncSession, call_id: str) -> tuple[PhoneCall, VoiceSession] | None:
    row = (
        await db.exec(
            select(PhoneCall, VoiceSession)
            .join(VoiceSession, col(VoiceSession.id) == col(PhoneCall.session_id))
            .where(col(PhoneCall.id) == call_id)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def get_call_by_session(
    db: AsyncSession, session_id: str
) -> tuple[PhoneCall, VoiceSession] | None:
    row = (
        await db.exec(
            select(PhoneCall, VoiceSession)
            .join(VoiceSession, col(VoiceSession.id) == col(PhoneCall.session_id))
            .where(col(VoiceSession.id) == session_id)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def get_call_by_room(db: AsyncSession, room: str) -> tuple[PhoneCall, VoiceSession] | None:
    row = (
        await db.exec(
            select(PhoneCall, VoiceSession)
            .join(VoiceSession, col(VoiceSession.id) == col(PhoneCall.session_id))
            .where(col(VoiceSession.room) == room)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def list_calls(
    db: AsyncSession, *, agent_id: str | None, limit: int, offset: int
) -> tuple[list[tuple[PhoneCall, VoiceSession]], int]:
    query = select(PhoneCall, VoiceSession).join(
        VoiceSession, col(VoiceSession.id) == col(PhoneCall.session_id)
    )
    count_query = (
        select(func.count())
        .select_from(PhoneCall)
        .join(VoiceSession, col(VoiceSession.id) == col(PhoneCall.session_id))
    )
    if agent_id is not None:
        query = query.where(col(VoiceSession.agent_id) == agent_id)
        count_query = count_query.where(col(VoiceSession.agent_id) == agent_id)
    count = (await db.exec(count_query)).one()
    rows = await db.exec(
        query.order_by(col(PhoneCall.created_at).desc(), col(PhoneCall.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return [(c, s) for c, s in rows.all()], count
