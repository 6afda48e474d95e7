"""Sessions: start a conversation with an agent and read its transcript.

A little over 300 lines: starting a session (quota, room, dispatch, token) and reading it
back (list, filters, export, detail, delete) are one resource of the API.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime

from control_plane import crud
from control_plane.api.deps import (
    CurrentApiKey,
    DbDep,
    LiveKitDep,
    Offset,
    RateLimiterDep,
    RecordingsDep,
    SettingsDep,
    too_many_requests,
)
from control_plane.api.routes.agents import agent_not_found
from control_plane.errors import LiveKitError, LiveKitUnavailable, RecordingStoreError
from control_plane.models import (
    Agent,
    SessionCreate,
    SessionCreated,
    SessionPublic,
    SessionsPublic,
    TurnPublic,
)
from control_plane.postcall import crud as postcall_crud
from control_plane.postcall.export import sessions_csv
from control_plane.postcall.models import (
    AnalysisStatus,
    SessionPublicWithAnalysis,
    analysis_public,
)
from stimm import tracing
from stimm.schema import Channel, JobMetadata, SessionStatus

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/sessions", tags=["sessions"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        429: {
            "description": "The API key started too many sessions this minute, or has too "
            "many open (see Retry-After)"
        },
        502: {"description": "LiveKit refused to create the room or dispatch the agent"},
        503: {
            "description": "LiveKit is unreachable, or no agent worker took the session within "
            "STIMM_DISPATCH_TIMEOUT (all full or none running); retry later"
        },
    },
)
async def create_session(
    db: DbDep,
    settings: SettingsDep,
    livekit: LiveKitDep,
    limiter: RateLimiterDep,
    key: CurrentApiKey,
    session_in: SessionCreate,
) -> SessionCreated:
    """Start a web session: create its room, dispatch the agent, return a join token.

    Returns once a worker has taken the job (the dispatch is re-sent while none has), so the
    caller never joins a room nobody will answer.
    """
    agent = await crud.get_agent(db, session_in.agent_id)
    if agent is None:
        raise agent_not_found(session_in.agent_id)
    await _within_quota(db, settings, limiter, key.id)
    return await start_web_session(db, settings, livekit, agent, api_key_id=key.id)


async def start_web_session(
    db: DbDep,
    settings: SettingsDep,
    livekit: LiveKitDep,
    agent: Agent,
    *,
    api_key_id: str | None = None,
    publishable_key_id: str | None = None,
) -> SessionCreated:
    """Record a web session, create its room, dispatch the agent and return the caller's
    room-scoped join token (the same for the API and the widget)."""
    identity = f"web-{secrets.token_hex(6)}"
    # Committed before the dispatch, so the worker finds the session when it reports on it.
    voice_session = await crud.create_session(
        db,
        agent_id=agent.id,
        channel="web",
        participant_identity=identity,
        api_key_id=api_key_id,
        publishable_key_id=publishable_key_id,
    )
    tracing.tag_current_span(voice_session.id, agent.id)
    metadata = JobMetadata(agent_id=agent.id, session_id=voice_session.id, channel="web")
    try:
        await livekit.create_room_and_dispatch(
            voice_session.room,
            metadata,
            on_dispatch=lambda token: crud.set_session_dispatch(db, voice_session, token),
        )
    except LiveKitError as e:
        logger.warning("session %s failed to start: %s", voice_session.id, e)
        await crud.mark_session_failed(db, voice_session, str(e))
        unavailable = isinstance(e, LiveKitUnavailable)
        raise HTTPException(
            status_code=(
                status.HTTP_503_SERVICE_UNAVAILABLE if unavailable else status.HTTP_502_BAD_GATEWAY
            ),
            detail=f"Could not start the session: {e}",
            headers={"Retry-After": "5"} if unavailable else None,
        ) from e
    token = livekit.participant_token(voice_session.room, identity)
    logger.info(
        "session %s started for agent %s in room %s", voice_session.id, agent.id, voice_session.room
    )
    return SessionCreated(
        session_id=voice_session.id,
        room=voice_session.room,
        livekit_url=settings.livekit_public_url,
        token=token.jwt,
        expires_at=token.expires_at,
    )


QUOTA_RETRY_S = 30
"""Retry-After when a key has its maximum of sessions open: sessions last minutes, not seconds."""


async def _within_quota(
    db: DbDep, settings: SettingsDep, limiter: RateLimiterDep, key_id: str
) -> None:
    """Refuse a session beyond the key's per-minute rate or concurrent-session quota (429)."""
    rate = settings.sessions_per_minute_per_key
    if (retry_after := await limiter.hit("sessions", key_id, rate)) is not None:
        raise too_many_requests(
            f"This API key started {rate} sessions in the last minute, its limit "
            "(STIMM_SESSIONS_PER_MINUTE_PER_KEY); retry after the Retry-After seconds",
            retry_after,
        )
    most = settings.max_concurrent_sessions_per_key
    if most:
        open_now = await crud.count_open_sessions(
            db, key_id, join_window_s=settings.session_token_ttl_s
        )
        if open_now >= most:
            raise too_many_requests(
                f"This API key has {open_now} sessions open, its limit "
                "(STIMM_MAX_CONCURRENT_SESSIONS_PER_KEY); end one or retry later",
                QUOTA_RETRY_S,
            )


SessionFilters = dict[str, object]


async def _session_filters(
    agent_id: str | None = None,
    channel: Channel | None = None,
    session_status: Annotated[SessionStatus | None, Query(alias="status")] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="Created at or after (ISO 8601 with offset)")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(description="Created before")] = None,
    analysis_status: Annotated[
        AnalysisStatus | None, Query(description="Only sessions whose analysis is in this state")
    ] = None,
    analysis_field: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[a-z][a-z0-9_]{0,63}$",
            description="Only sessions whose analysis has this field set (to analysis_value)",
        ),
    ] = None,
    analysis_value: Annotated[
        str | None,
        Query(
            max_length=200,
            description="true/false, a number, or text the field contains (any case)",
        ),
    ] = None,
) -> SessionFilters:
    if analysis_value is not None and analysis_field is None:
        raise RequestValidationError(
            [
                {
                    "type": "missing",
                    "loc": ("query", "analysis_field"),
                    "msg": "analysis_value needs analysis_field: the field to compare it with",
                    "input": None,
                }
            ]
        )
    analysed = postcall_crud.analysis_filter(analysis_status, analysis_field, analysis_value)
    return {
        "agent_id": agent_id,
        "channel": channel,
        "status": session_status,
        "since": since,
        "until": until,
        "where": [analysed] if analysed is not None else [],
    }


SessionFiltersDep = Annotated[SessionFilters, Depends(_session_filters)]


@router.get("")
async def list_sessions(
    db: DbDep,
    filters: SessionFiltersDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> SessionsPublic:
    """List sessions, newest first, filtered by agent, channel, status, creation time and
    analysis."""
    sessions, count = await crud.list_sessions(db, **filters, limit=limit, offset=offset)  # type: ignore[arg-type]
    return SessionsPublic(
        items=[SessionPublic.model_validate(c, from_attributes=True) for c in sessions], count=count
    )


EXPORT_LIMIT = 10_000


@router.get(
    "/export.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per session"}},
)
async def export_sessions(
    db: DbDep,
    filters: SessionFiltersDep,
    limit: Annotated[int, Query(ge=1, le=EXPORT_LIMIT)] = EXPORT_LIMIT,
) -> Response:
    """The filtered sessions as CSV, newest first: outcome, analysis summary and one column
    per analysis field."""
    sessions, _ = await crud.list_sessions(db, **filters, limit=limit, offset=0)  # type: ignore[arg-type]
    analyses = await postcall_crud.analyses_of(db, [c.id for c in sessions])
    return Response(
        content=sessions_csv(sessions, analyses),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="sessions.csv"'},
    )


@router.get("/{session_id}", responses={404: {"description": "No such session"}})
async def get_session(db: DbDep, session_id: str) -> SessionPublicWithAnalysis:
    """One session: outcome, transcript turns in order, each with its latency metrics, and
    its post-call analysis."""
    voice_session = await crud.get_session(db, session_id)
    if voice_session is None:
        raise session_not_found(session_id)
    turns = await crud.list_turns(db, session_id)
    analysis = await postcall_crud.get_analysis(db, session_id)
    return SessionPublicWithAnalysis.model_validate(
        {
            **voice_session.model_dump(),
            "turns": [TurnPublic.model_validate(t, from_attributes=True) for t in turns],
            "analysis": analysis_public(analysis) if analysis is not None else None,
        }
    )


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "No such session"}, 409: {"description": "Still running"}},
)
async def delete_session(db: DbDep, recordings: RecordingsDep, session_id: str) -> None:
    """Delete an ended session: its transcript and its recording with it."""
    voice_session = await crud.get_session(db, session_id)
    if voice_session is None:
        raise session_not_found(session_id)
    if voice_session.status in ("created", "active"):
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail=(
                f"Session {session_id} is still {voice_session.status}; delete it once it has ended"
            ),
        )
    recording = await recordings.get(db, session_id)
    if recording is not None:
        try:
            await recordings.delete(db, recording)
        except RecordingStoreError as e:
            raise HTTPException(
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                detail=f"The recording could not be deleted ({e}); try again in a moment",
                headers={"Retry-After": "5"},
            ) from e
    await crud.delete_session(db, voice_session)
    logger.info("session %s deleted", session_id)


def session_not_found(session_id: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_404_NOT_FOUND, detail=f"Session {session_id} not found"
    )
