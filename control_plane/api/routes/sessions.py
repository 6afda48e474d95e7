"""Sessions: start a conversation with an agent and read its transcript.

A little over 300 lines: starting a session (quota, room, dispatch, token) and reading it
back (list, filters, export, detail, delete) are one resource of the API.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response, status
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
from control_plane.api.session_start import replay_web_session, start_web_session
from control_plane.errors import IdempotencyKeyInUse, RecordingStoreError
from control_plane.models import (
    SessionCreate,
    SessionCreated,
    SessionPublic,
    SessionsPublic,
    TurnPublic,
    VoiceSession,
)
from control_plane.postcall import crud as postcall_crud
from control_plane.postcall.export import sessions_csv
from control_plane.postcall.models import (
    AnalysisStatus,
    SessionPublicWithAnalysis,
    analysis_public,
)
from stimm.schema import Channel, SessionStatus

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/sessions", tags=["sessions"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "The session this Idempotency-Key already started (replayed)"},
        409: {"description": "This Idempotency-Key's session has ended, or was for another agent"},
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
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=128,
            description="Retry with the same key (and API key) to get the session the first "
            "request started instead of a second one: 200 with Idempotent-Replayed: true, a "
            "new join token for the same room. A key whose session failed to start is free "
            "again; one whose session ended is 409.",
        ),
    ] = None,
) -> SessionCreated:
    """Start a web session: create its room, dispatch the agent, return a join token.

    Returns once a worker has taken the job (the dispatch is re-sent while none has), so the
    caller never joins a room nobody will answer.
    """
    key_id = key.id  # read now: a lost race on the key rolls back, expiring the row
    if idempotency_key is not None:
        known = await crud.session_by_idempotency_key(db, key_id, idempotency_key)
        if known is not None:
            if known.agent_id != session_in.agent_id:
                raise HTTPException(
                    status_code=status.HTTP_409_CONFLICT,
                    detail="This Idempotency-Key started a session with another agent",
                )
            return await _replayed(db, settings, livekit, known, response)
    agent = await crud.get_agent(db, session_in.agent_id)
    if agent is None:
        raise agent_not_found(session_in.agent_id)
    await _within_quota(db, settings, limiter, key_id)
    try:
        return await start_web_session(
            db, settings, livekit, agent, api_key_id=key_id, idempotency_key=idempotency_key
        )
    except IdempotencyKeyInUse:  # a concurrent request with the same key recorded it first
        assert idempotency_key is not None
        known = await crud.session_by_idempotency_key(db, key_id, idempotency_key)
        if known is None:  # released meanwhile: that request failed to start it
            raise HTTPException(
                status_code=status.HTTP_409_CONFLICT,
                detail="A request with this Idempotency-Key is failing; retry it",
                headers={"Retry-After": "1"},
            ) from None
        return await _replayed(db, settings, livekit, known, response)


async def _replayed(
    db: DbDep,
    settings: SettingsDep,
    livekit: LiveKitDep,
    voice_session: VoiceSession,
    response: Response,
) -> SessionCreated:
    created = await replay_web_session(db, settings, livekit, voice_session)
    response.status_code = status.HTTP_200_OK
    response.headers["Idempotent-Replayed"] = "true"
    return created


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
