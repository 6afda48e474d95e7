"""Database operations. Each takes an ``AsyncSession``; "not found" is ``None``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.errors import SessionStateConflict
from control_plane.models import (
    Agent,
    AgentCreate,
    AgentUpdate,
    Session,
    Turn,
    new_id,
    utcnow,
)
from stimm.schema import AgentConfig, Channel, SessionEvent, TurnIn

# --- agents -----------------------------------------------------------------------------------


async def create_agent(db: AsyncSession, agent_in: AgentCreate) -> Agent:
    agent = Agent.model_validate(agent_in.model_dump(mode="json"))
    db.add(agent)
    await db.commit()
    return agent


async def get_agent(db: AsyncSession, agent_id: str) -> Agent | None:
    return await db.get(Agent, agent_id)


async def list_agents(db: AsyncSession, *, limit: int, offset: int) -> tuple[list[Agent], int]:
    count = (await db.exec(select(func.count()).select_from(Agent))).one()
    rows = await db.exec(
        select(Agent)
        .order_by(col(Agent.created_at).desc(), col(Agent.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), count


async def update_agent(db: AsyncSession, agent: Agent, agent_in: AgentUpdate) -> Agent:
    """Apply a partial update; raises ``pydantic.ValidationError`` if the result is invalid."""
    merged = agent.to_config().model_dump(mode="json")
    merged.update(agent_in.model_dump(mode="json", exclude_unset=True))
    config = AgentConfig.model_validate(merged)
    agent.sqlmodel_update(config.model_dump(mode="json"))
    agent.updated_at = utcnow()
    db.add(agent)
    await db.commit()
    return agent


# --- sessions ---------------------------------------------------------------------------------


async def create_session(
    db: AsyncSession, *, agent_id: str, channel: Channel, participant_identity: str | None
) -> Session:
    session_id = new_id()
    call = Session(
        id=session_id,
        agent_id=agent_id,
        room=f"stimm-{session_id}",
        channel=channel,
        status="created",
        participant_identity=participant_identity,
    )
    db.add(call)
    await db.commit()
    return call


async def get_session(db: AsyncSession, session_id: str) -> Session | None:
    return await db.get(Session, session_id)


async def list_sessions(
    db: AsyncSession, *, agent_id: str | None, limit: int, offset: int
) -> tuple[list[Session], int]:
    count_query = select(func.count()).select_from(Session)
    query = select(Session)
    if agent_id is not None:
        count_query = count_query.where(col(Session.agent_id) == agent_id)
        query = query.where(col(Session.agent_id) == agent_id)
    count = (await db.exec(count_query)).one()
    rows = await db.exec(
        query.order_by(col(Session.created_at).desc(), col(Session.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), count


async def mark_session_failed(db: AsyncSession, call: Session, reason: str) -> Session:
    call.status = "failed"
    call.failure_reason = reason
    call.ended_at = utcnow()
    db.add(call)
    await db.commit()
    return call


_NEXT_STATUSES = {
    "created": {"active", "completed", "failed"},
    "active": {"completed", "failed"},
    "completed": set(),
    "failed": set(),
}


async def apply_session_event(db: AsyncSession, call: Session, event: SessionEvent) -> Session:
    """Move a session along its lifecycle; repeating the current status is a no-op.

    Raises ``SessionStateConflict`` for a move out of a finished session.
    """
    if event.turn_detection:
        call.turn_detection = event.turn_detection
    if event.worker_id:
        call.worker_id = event.worker_id
    if event.status == call.status:
        db.add(call)
        await db.commit()
        return call
    if event.status not in _NEXT_STATUSES[call.status]:
        raise SessionStateConflict(
            f"Session {call.id} is {call.status}; it cannot become {event.status}"
        )
    now = utcnow()
    call.status = event.status
    if event.status == "active":
        call.started_at = now
    else:
        call.ended_at = now
        if event.status == "failed":
            call.failure_reason = event.reason
    db.add(call)
    await db.commit()
    return call


# --- turns ------------------------------------------------------------------------------------


async def add_turn(db: AsyncSession, session_id: str, turn_in: TurnIn) -> Turn | None:
    """Append a turn with the next ``seq`` of its session; ``None`` if there is no such session."""
    for attempt in range(_APPEND_ATTEMPTS):
        try:
            return await _append_turn(db, session_id, turn_in)
        except IntegrityError:
            # Another append took this seq (SQLite has no row locks); read the max again.
            await db.rollback()
            if attempt + 1 == _APPEND_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


_APPEND_ATTEMPTS = 3


async def _append_turn(db: AsyncSession, session_id: str, turn_in: TurnIn) -> Turn | None:
    # On PostgreSQL the row lock serialises appends to one session.
    locked = await db.exec(select(Session).where(col(Session.id) == session_id).with_for_update())
    if locked.first() is None:
        return None
    last_seq = (
        await db.exec(select(func.max(Turn.seq)).where(col(Turn.session_id) == session_id))
    ).one()
    turn = Turn(
        session_id=session_id,
        seq=(last_seq or 0) + 1,
        role=turn_in.role,
        text=turn_in.text,
        interrupted=turn_in.interrupted,
        started_at=_as_utc(turn_in.started_at),
        ended_at=_as_utc(turn_in.ended_at),
        metrics=turn_in.metrics.model_dump(mode="json"),
    )
    db.add(turn)
    await db.commit()
    return turn


def _as_utc(value: datetime | None) -> datetime | None:
    """Naive timestamps from the worker are taken to be UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


async def list_turns(db: AsyncSession, session_id: str) -> list[Turn]:
    rows = await db.exec(
        select(Turn).where(col(Turn.session_id) == session_id).order_by(col(Turn.seq))
    )
    return list(rows.all())
