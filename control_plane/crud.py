"""Database operations. Each takes an ``AsyncSession``; "not found" is ``None``.

Over 300 lines on purpose: the template's one ``crud.py`` for the core domain of ``models.py``
(agents, sessions and their claim/events/turns, API keys, secrets); other domains have their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.errors import (
    AgentInUse,
    DefaultAgentConflict,
    IdempotencyKeyInUse,
    SessionClaimed,
    SessionStateConflict,
)
from control_plane.models import (
    Agent,
    AgentUpdate,
    Turn,
    VoiceSession,
    new_id,
    utcnow,
)
from stimm.schema import AgentConfig, Channel, SessionClaim, SessionEvent, SessionStatus, TurnIn

# --- agents -----------------------------------------------------------------------------------


async def create_agent(db: AsyncSession, config: AgentConfig) -> Agent:
    """Store a new agent; the first agent of a deployment becomes its default.

    Agents created at the same moment on an empty deployment all see no default: the database
    lets one of them be it (``uq_agent_one_default``), the others are stored as plain agents.
    """
    agent = Agent.model_validate(config.model_dump(mode="json"))
    agent.is_default = await get_default_agent(db) is None
    db.add(agent)
    try:
        await db.commit()
    except IntegrityError:
        if not agent.is_default:
            raise
        await db.rollback()
        agent.is_default = False
        db.add(agent)
        await db.commit()
    return agent


async def get_default_agent(db: AsyncSession) -> Agent | None:
    return (await db.exec(select(Agent).where(col(Agent.is_default)))).first()


async def set_default_agent(db: AsyncSession, agent: Agent) -> Agent:
    """Make ``agent`` the default, and no other, in one transaction.

    Raises ``DefaultAgentConflict`` when other requests kept changing the default meanwhile.
    """
    agent_id = agent.id  # a rollback expires ``agent``
    for _ in range(_DEFAULT_ATTEMPTS):
        try:
            # two statements: PostgreSQL checks a unique index row by row within one
            now = utcnow()
            await db.exec(
                update(Agent)
                .where(col(Agent.is_default), col(Agent.id) != agent_id)
                .values(is_default=False, updated_at=now)
            )
            await db.exec(
                update(Agent)
                .where(col(Agent.id) == agent_id)
                .values(is_default=True, updated_at=now)
            )
            await db.commit()
        except IntegrityError:
            # another request made its agent the default after this one looked
            await db.rollback()
            continue
        await db.refresh(agent)
        return agent
    raise DefaultAgentConflict(
        "The default agent is being changed by other requests at the same time; try again"
    )


_DEFAULT_ATTEMPTS = 3


async def duplicate_agent(db: AsyncSession, agent: Agent, name: str | None) -> Agent:
    """A copy of ``agent`` under a new id, never the default."""
    config = agent.to_config()
    copy_name = name or f"{config.name} (copy)"[:100]
    copy = Agent.model_validate({**config.model_dump(mode="json"), "name": copy_name})
    db.add(copy)
    await db.commit()
    return copy


async def delete_agent(db: AsyncSession, agent: Agent) -> None:
    """Delete an agent that no session refers to; raises ``AgentInUse`` otherwise."""
    sessions = (
        await db.exec(select(func.count()).where(col(VoiceSession.agent_id) == agent.id))
    ).one()
    if sessions:
        raise AgentInUse(
            f"Agent {agent.id} has {sessions} recorded session(s); their history refers to it"
        )
    await db.delete(agent)
    await db.commit()


async def get_agent(db: AsyncSession, agent_id: str) -> Agent | None:
    return await db.get(Agent, agent_id)


async def agents_version(db: AsyncSession) -> tuple[int, str]:
    """How many agents there are and the latest ``updated_at`` among them: every write to an
    agent sets its ``updated_at`` (a new one, an edit, the default flag), and a delete changes
    the count, so the pair changes whenever the agent list does."""
    count, latest = (await db.exec(select(func.count(), func.max(col(Agent.updated_at))))).one()
    return count, str(latest)


async def list_agents(db: AsyncSession, *, limit: int, offset: int) -> list[Agent]:
    rows = await db.exec(
        select(Agent)
        .order_by(col(Agent.created_at).desc(), col(Agent.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all())


def merge_agent_update(agent: Agent, agent_in: AgentUpdate) -> AgentConfig:
    """The agent's config with the update applied; raises ``pydantic.ValidationError``."""
    merged = agent.to_config().model_dump(mode="json")
    merged.update(agent_in.model_dump(mode="json", exclude_unset=True))
    return AgentConfig.model_validate(merged)


async def update_agent(db: AsyncSession, agent: Agent, config: AgentConfig) -> Agent:
    agent.sqlmodel_update(config.model_dump(mode="json"))
    agent.updated_at = utcnow()
    db.add(agent)
    await db.commit()
    return agent


# --- sessions ---------------------------------------------------------------------------------


async def create_session(
    db: AsyncSession,
    *,
    agent_id: str,
    channel: Channel,
    participant_identity: str | None,
    api_key_id: str | None = None,
    publishable_key_id: str | None = None,
    idempotency_key: str | None = None,
) -> VoiceSession:
    """Record a new session. Raises ``IdempotencyKeyInUse`` when a session of the same API key
    already holds ``idempotency_key`` (the unique constraint decides between concurrent
    requests, on any replica)."""
    session_id = new_id()
    voice_session = VoiceSession(
        id=session_id,
        agent_id=agent_id,
        room=f"stimm-{session_id}",
        channel=channel,
        status="created",
        participant_identity=participant_identity,
        api_key_id=api_key_id,
        publishable_key_id=publishable_key_id,
        idempotency_key=idempotency_key,
    )
    db.add(voice_session)
    try:
        await db.commit()
    except IntegrityError as e:
        await db.rollback()
        if idempotency_key is None:
            raise
        raise IdempotencyKeyInUse(f"Idempotency-Key {idempotency_key!r} is in use") from e
    return voice_session


async def session_by_idempotency_key(
    db: AsyncSession, api_key_id: str, idempotency_key: str
) -> VoiceSession | None:
    """The session ``api_key_id`` started with ``idempotency_key``, if any."""
    rows = await db.exec(
        select(VoiceSession).where(
            col(VoiceSession.api_key_id) == api_key_id,
            col(VoiceSession.idempotency_key) == idempotency_key,
        )
    )
    return rows.first()


async def count_open_sessions(
    db: AsyncSession,
    api_key_id: str | None = None,
    *,
    join_window_s: int,
    publishable_key_id: str | None = None,
) -> int:
    """Sessions of ``api_key_id`` (or of ``publishable_key_id``) still running: active ones,
    and created ones whose join token may still be used (an older one nobody joined is over,
    whatever its record says)."""
    joinable_since = utcnow() - timedelta(seconds=join_window_s)
    started_by = (
        col(VoiceSession.publishable_key_id) == publishable_key_id
        if publishable_key_id is not None
        else col(VoiceSession.api_key_id) == api_key_id
    )
    query = select(func.count()).where(
        started_by,
        or_(
            col(VoiceSession.status) == "active",
            and_(
                col(VoiceSession.status) == "created",
                col(VoiceSession.created_at) >= joinable_since,
            ),
        ),
    )
    return (await db.exec(query)).one()


async def get_session(db: AsyncSession, session_id: str) -> VoiceSession | None:
    return await db.get(VoiceSession, session_id)


async def delete_session(db: AsyncSession, voice_session: VoiceSession) -> None:
    """Delete a session; its turns (and recording row) go with it (``ON DELETE CASCADE``)."""
    await db.delete(voice_session)
    await db.commit()


async def list_sessions(
    db: AsyncSession,
    *,
    agent_id: str | None = None,
    channel: Channel | None = None,
    status: SessionStatus | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    where: Sequence[ColumnElement[bool]] = (),
    limit: int,
    offset: int,
) -> tuple[list[VoiceSession], int]:
    """Sessions created in ``[since, until)`` matching the filters (and ``where``), newest
    first."""
    conditions: list[ColumnElement[bool]] = list(where)
    if agent_id is not None:
        conditions.append(col(VoiceSession.agent_id) == agent_id)
    if channel is not None:
        conditions.append(col(VoiceSession.channel) == channel)
    if status is not None:
        conditions.append(col(VoiceSession.status) == status)
    if since is not None:
        conditions.append(col(VoiceSession.created_at) >= since)
    if until is not None:
        conditions.append(col(VoiceSession.created_at) < until)
    count_query = select(func.count()).select_from(VoiceSession).where(*conditions)
    query = select(VoiceSession).where(*conditions)
    count = (await db.exec(count_query)).one()
    rows = await db.exec(
        query.order_by(col(VoiceSession.created_at).desc(), col(VoiceSession.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), count


async def mark_session_failed(
    db: AsyncSession, voice_session: VoiceSession, reason: str
) -> VoiceSession:
    voice_session.status = "failed"
    voice_session.failure_reason = reason
    voice_session.ended_at = utcnow()
    db.add(voice_session)
    await db.commit()
    return voice_session


async def claim_session(
    db: AsyncSession, session_id: str, claim: SessionClaim
) -> VoiceSession | None:
    """Give the session to ``claim.job_id`` unless another job has it; ``None`` if no session.

    One conditional UPDATE, so two jobs claiming at once cannot both win. Claiming again with
    the same job is a no-op. Raises ``SessionClaimed`` when another job answers the session or
    it has already ended.
    """
    values = {"job_id": claim.job_id}
    if claim.worker_id:
        values["worker_id"] = claim.worker_id
    result = await db.exec(
        update(VoiceSession)
        .where(
            col(VoiceSession.id) == session_id,
            col(VoiceSession.status).in_(("created", "active")),
            or_(col(VoiceSession.job_id).is_(None), col(VoiceSession.job_id) == claim.job_id),
            or_(
                col(VoiceSession.dispatch_token).is_(None),
                col(VoiceSession.dispatch_token) == claim.dispatch,
            ),
        )
        .values(values)
    )
    await db.commit()
    voice_session = await db.get(VoiceSession, session_id, populate_existing=True)
    if voice_session is None or result.rowcount == 1:
        return voice_session
    if voice_session.status not in ("created", "active"):
        raise SessionClaimed(
            f"Session {session_id} is {voice_session.status}; no job may answer it"
        )
    if voice_session.dispatch_token is not None and voice_session.dispatch_token != claim.dispatch:
        raise SessionClaimed(
            f"Session {session_id} was dispatched again; this job's dispatch ended"
        )
    raise SessionClaimed(f"Session {session_id} is already answered by job {voice_session.job_id}")


async def set_session_dispatch(db: AsyncSession, voice_session: VoiceSession, token: str) -> None:
    """Record the session's new dispatch before it is sent: from now on only a job of that
    dispatch may claim it, even if a job of the previous one claimed it already."""
    voice_session.dispatch_token = token
    voice_session.job_id = None
    db.add(voice_session)
    await db.commit()


_NEXT_STATUSES = {
    "created": {"active", "completed", "failed", "abandoned"},
    "active": {"completed", "failed", "abandoned"},
    "completed": set(),
    "failed": set(),
    "abandoned": set(),
}


async def apply_session_event(
    db: AsyncSession, voice_session: VoiceSession, event: SessionEvent
) -> VoiceSession:
    """Move a session along its lifecycle; repeating the current status is a no-op.

    Raises ``SessionStateConflict`` for a move out of a finished session.
    """
    if event.turn_detection:
        voice_session.turn_detection = event.turn_detection
    if event.worker_id:
        voice_session.worker_id = event.worker_id
    if event.status == voice_session.status:
        db.add(voice_session)
        await db.commit()
        return voice_session
    if event.status not in _NEXT_STATUSES[voice_session.status]:
        raise SessionStateConflict(
            f"Session {voice_session.id} is {voice_session.status}; it cannot become {event.status}"
        )
    now = utcnow()
    voice_session.status = event.status
    if event.status == "active":
        voice_session.started_at = now
    else:
        voice_session.ended_at = now
        if event.status in ("failed", "abandoned"):
            voice_session.failure_reason = event.reason
    db.add(voice_session)
    await db.commit()
    return voice_session


# --- turns ------------------------------------------------------------------------------------


async def add_turn(db: AsyncSession, session_id: str, turn_in: TurnIn) -> tuple[Turn | None, bool]:
    """Append a turn with the next ``seq`` of its session.

    Returns the turn and whether it is new: a turn whose ``key`` the session already has is
    not stored again (the worker retried its post), and the stored one comes back. ``None``
    if there is no such session.
    """
    for attempt in range(_APPEND_ATTEMPTS):
        try:
            if turn_in.key is not None and (known := await _turn_by_key(db, session_id, turn_in)):
                return known, False
            return await _append_turn(db, session_id, turn_in), True
        except IntegrityError:
            # Another append took this seq (SQLite has no row locks), or the same key (a retry
            # that overtook the first post): read again.
            await db.rollback()
            if attempt + 1 == _APPEND_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


_APPEND_ATTEMPTS = 3


async def _turn_by_key(db: AsyncSession, session_id: str, turn_in: TurnIn) -> Turn | None:
    query = select(Turn).where(col(Turn.session_id) == session_id, col(Turn.key) == turn_in.key)
    return (await db.exec(query)).first()


async def _append_turn(db: AsyncSession, session_id: str, turn_in: TurnIn) -> Turn | None:
    # On PostgreSQL the row lock serialises appends to one session.
    locked = await db.exec(
        select(VoiceSession).where(col(VoiceSession.id) == session_id).with_for_update()
    )
    if locked.first() is None:
        return None
    last_seq = (
        await db.exec(select(func.max(Turn.seq)).where(col(Turn.session_id) == session_id))
    ).one()
    turn = Turn(
        session_id=session_id,
        seq=(last_seq or 0) + 1,
        key=turn_in.key,
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
