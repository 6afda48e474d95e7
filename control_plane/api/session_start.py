"""Starting a web session (the API's and the widget's): record it, create its room, dispatch
the agent, hand back a join token — and, for a request that repeats an ``Idempotency-Key``,
the session that key already started.

The key is a column of the session (unique per API key), so every control-plane replica sees
it: a client whose first request died with its replica retries on another and gets the same
session, dispatched again when no worker has it yet.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import HTTPException, status

from control_plane import crud
from control_plane.api.deps import DbDep, LiveKitDep, SettingsDep
from control_plane.errors import LiveKitError, LiveKitUnavailable
from control_plane.models import Agent, SessionCreated, VoiceSession
from stimm import tracing
from stimm.schema import JobMetadata

logger = logging.getLogger("stimm.control_plane")


async def start_web_session(
    db: DbDep,
    settings: SettingsDep,
    livekit: LiveKitDep,
    agent: Agent,
    *,
    api_key_id: str | None = None,
    publishable_key_id: str | None = None,
    idempotency_key: str | None = None,
) -> SessionCreated:
    """Record a web session, create its room, dispatch the agent and return the caller's
    room-scoped join token (the same for the API and the widget).

    Raises ``IdempotencyKeyInUse`` when a concurrent request with the same key recorded its
    session first.
    """
    identity = f"web-{secrets.token_hex(6)}"
    # Committed before the dispatch, so the worker finds the session when it reports on it.
    voice_session = await crud.create_session(
        db,
        agent_id=agent.id,
        channel="web",
        participant_identity=identity,
        api_key_id=api_key_id,
        publishable_key_id=publishable_key_id,
        idempotency_key=idempotency_key,
    )
    tracing.tag_current_span(voice_session.id, agent.id)
    await _dispatch(db, livekit, voice_session)
    logger.info(
        "session %s started for agent %s in room %s", voice_session.id, agent.id, voice_session.room
    )
    return _created(settings, livekit, voice_session)


async def replay_web_session(
    db: DbDep, settings: SettingsDep, livekit: LiveKitDep, voice_session: VoiceSession
) -> SessionCreated:
    """The session an ``Idempotency-Key`` already started, with a new join token for the same
    caller identity.

    A session still waiting for its agent with no worker on it (the replica that started it
    died mid-dispatch) is dispatched again here. A worker that took the earlier dispatch
    between the check and the new one is refused when it claims the session (its dispatch
    token is outdated): the caller never gets two agents. An ended session is 409.
    """
    tracing.tag_current_span(voice_session.id, voice_session.agent_id)
    if voice_session.status not in ("created", "active"):
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail=(
                f"Session {voice_session.id}, started with this Idempotency-Key, is "
                f"{voice_session.status}; use a new key to start another"
            ),
        )
    if voice_session.status == "created" and voice_session.job_id is None:
        try:
            assigned = await livekit.assigned_worker(voice_session.room, voice_session.id)
        except LiveKitError as e:
            raise _start_failed(e) from e
        if assigned is None:
            logger.info(
                "session %s: retried with no worker on it; dispatching again", voice_session.id
            )
            await _dispatch(db, livekit, voice_session)
    return _created(settings, livekit, voice_session)


async def _dispatch(db: DbDep, livekit: LiveKitDep, voice_session: VoiceSession) -> None:
    """Create the room and dispatch until a worker has the job; a session that cannot start
    is marked failed, releases its idempotency key (a retry starts it again) and is 502/503."""
    metadata = JobMetadata(
        agent_id=voice_session.agent_id, session_id=voice_session.id, channel="web"
    )
    try:
        await livekit.create_room_and_dispatch(
            voice_session.room,
            metadata,
            on_dispatch=lambda token: crud.set_session_dispatch(db, voice_session, token),
        )
    except LiveKitError as e:
        logger.warning("session %s failed to start: %s", voice_session.id, e)
        voice_session.idempotency_key = None
        await crud.mark_session_failed(db, voice_session, str(e))
        raise _start_failed(e) from e


def _start_failed(e: LiveKitError) -> HTTPException:
    unavailable = isinstance(e, LiveKitUnavailable)
    return HTTPException(
        status_code=(
            status.HTTP_503_SERVICE_UNAVAILABLE if unavailable else status.HTTP_502_BAD_GATEWAY
        ),
        detail=f"Could not start the session: {e}",
        headers={"Retry-After": "5"} if unavailable else None,
    )


def _created(
    settings: SettingsDep, livekit: LiveKitDep, voice_session: VoiceSession
) -> SessionCreated:
    token = livekit.participant_token(
        voice_session.room, voice_session.participant_identity or f"web-{secrets.token_hex(6)}"
    )
    return SessionCreated(
        session_id=voice_session.id,
        room=voice_session.room,
        livekit_url=settings.livekit_public_url,
        token=token.jwt,
        expires_at=token.expires_at,
    )
