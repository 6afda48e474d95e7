"""The embeddable widget's one route: start a session with a publishable key.

A publishable key opens nothing else. The browser's ``Origin`` must be one of the key's
allowed origins, and CORS is answered for those origins only: a preflight from an origin that
no active key allows gets no ``Access-Control-Allow-Origin``, so the browser never sends the
request, and a request from an origin the key does not allow is refused with 403.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from control_plane import crud
from control_plane.api.deps import (
    DbDep,
    LiveKitDep,
    RateLimiterDep,
    SettingsDep,
    too_many_requests,
)
from control_plane.api.routes.agents import agent_not_found
from control_plane.api.routes.sessions import QUOTA_RETRY_S
from control_plane.api.session_start import start_web_session
from control_plane.models import SessionCreated
from control_plane.widget import crud as widget_crud
from control_plane.widget.models import PublishableKey, WidgetSessionCreate
from control_plane.widget.origins import normalize_origin, origin_allowed

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/api/widget", tags=["widget"])

_publishable_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="PublishableKey",
    description="A publishable key (stimm_pk_...), created in the console or the API.",
)

PREFLIGHT_MAX_AGE_S = 600


def _cors(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


@router.options("/sessions", include_in_schema=False)
async def preflight(request: Request, db: DbDep) -> Response:
    """CORS preflight: allowed for origins an active publishable key lists, refused otherwise."""
    origin = request.headers.get("origin", "")
    try:
        allowed = await widget_crud.any_active_key_allows(db, normalize_origin(origin))
    except ValueError:
        allowed = False
    if not allowed:
        return Response(status_code=status.HTTP_403_FORBIDDEN, headers={"Vary": "Origin"})
    return Response(
        status_code=status.HTTP_204_NO_CONTENT,
        headers={
            **_cors(origin),
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        },
    )


async def require_publishable_key(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_publishable_bearer)],
    db: DbDep,
) -> PublishableKey:
    if bearer is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="A publishable key is required (Authorization: Bearer stimm_pk_...)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = await widget_crud.find_active_publishable_key(db, bearer.credentials)
    if key is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="The publishable key is unknown or revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return key


@router.post(
    "/sessions",
    status_code=status.HTTP_201_CREATED,
    responses={
        401: {"description": "No publishable key, or an unknown or revoked one"},
        403: {"description": "The Origin or the agent is not one of the key's"},
        404: {"description": "The agent no longer exists"},
        429: {"description": "Too many sessions from this key or this address (Retry-After)"},
        503: {"description": "LiveKit or every worker is unavailable; retry later"},
    },
)
async def create_widget_session(
    request: Request,
    response: Response,
    db: DbDep,
    settings: SettingsDep,
    livekit: LiveKitDep,
    limiter: RateLimiterDep,
    key: Annotated[PublishableKey, Depends(require_publishable_key)],
    session_in: WidgetSessionCreate | None = None,
) -> SessionCreated:
    """Start a web session from the widget; the same room-scoped join token as the API's."""
    origin = request.headers.get("origin")
    if origin is None or not origin_allowed(origin, key.allowed_origins):
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=f"The origin {origin or '(none)'} is not allowed to use this publishable key",
        )
    cors = _cors(origin)
    try:
        agent_id = (session_in.agent_id if session_in else None) or key.agent_ids[0]
        if agent_id not in key.agent_ids:
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"This publishable key cannot start sessions with agent {agent_id}",
            )
        agent = await crud.get_agent(db, agent_id)
        if agent is None:
            raise agent_not_found(agent_id)
        client = request.client.host if request.client else "unknown"
        await _within_widget_limits(db, settings, limiter, key, client)
        created = await start_web_session(db, settings, livekit, agent, publishable_key_id=key.id)
    except HTTPException as e:
        e.headers = {**(e.headers or {}), **cors}
        raise
    response.headers.update(cors)
    return created


async def _within_widget_limits(
    db: DbDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
    key: PublishableKey,
    client: str,
) -> None:
    """Refuse a session beyond the address's or the key's per-minute rate, or the key's
    concurrent-session quota (429)."""
    per_address = settings.widget_sessions_per_minute_per_address
    if (retry_after := await limiter.hit("widget-address", client, per_address)) is not None:
        raise too_many_requests(
            f"This address started {per_address} sessions in the last minute, its limit "
            "(STIMM_WIDGET_SESSIONS_PER_MINUTE_PER_ADDRESS); retry after the Retry-After seconds",
            retry_after,
        )
    per_key = settings.widget_sessions_per_minute_per_key
    if (retry_after := await limiter.hit("widget-key", key.id, per_key)) is not None:
        raise too_many_requests(
            f"This publishable key started {per_key} sessions in the last minute, its limit "
            "(STIMM_WIDGET_SESSIONS_PER_MINUTE_PER_KEY); retry after the Retry-After seconds",
            retry_after,
        )
    most = settings.max_concurrent_sessions_per_key
    if most:
        open_now = await crud.count_open_sessions(
            db, publishable_key_id=key.id, join_window_s=settings.session_token_ttl_s
        )
        if open_now >= most:
            raise too_many_requests(
                f"This publishable key has {open_now} sessions open, its limit "
                "(STIMM_MAX_CONCURRENT_SESSIONS_PER_KEY); retry later",
                QUOTA_RETRY_S,
            )
