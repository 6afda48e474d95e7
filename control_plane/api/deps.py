"""Dependencies shared by the routes."""

from __future__ import annotations

import secrets
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane import credentials
from control_plane.cache import AgentConfigCache
from control_plane.core.config import Settings
from control_plane.core.db import get_session
from control_plane.livekit import LiveKit
from control_plane.security import SecretBox


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_livekit(request: Request) -> LiveKit:
    return cast(LiveKit, request.app.state.livekit)


def get_cache(request: Request) -> AgentConfigCache:
    return cast(AgentConfigCache, request.app.state.cache)


def get_secret_box(request: Request) -> SecretBox:
    return cast(SecretBox, request.app.state.secret_box)


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LiveKitDep = Annotated[LiveKit, Depends(get_livekit)]
CacheDep = Annotated[AgentConfigCache, Depends(get_cache)]
SecretBoxDep = Annotated[SecretBox, Depends(get_secret_box)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


_api_key_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key (`stimm api-key create`, or the bootstrap key printed at first start).",
)


async def require_api_key(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_api_key_bearer)],
    db: SessionDep,
) -> None:
    """Let through requests with an active API key (``Authorization: Bearer <key>``)."""
    if bearer is None:
        raise _unauthorized("An API key is required (Authorization: Bearer <key>)")
    if await credentials.find_active_api_key(db, bearer.credentials) is None:
        raise _unauthorized("The API key is unknown or revoked")


ApiKeyAuthDep = Depends(require_api_key)
"""In a router's ``dependencies``: every route needs an API key."""

_worker_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="WorkerToken",
    description="The worker's STIMM_WORKER_TOKEN.",
)


def require_worker(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_worker_bearer)],
    settings: SettingsDep,
) -> None:
    """Let only the Stimm worker through (``Authorization: Bearer <STIMM_WORKER_TOKEN>``)."""
    expected = settings.worker_token.get_secret_value().encode()
    if credentials is None or not secrets.compare_digest(
        credentials.credentials.encode(), expected
    ):
        raise _unauthorized("A valid worker token is required")


WorkerAuthDep = Depends(require_worker)
"""Put in a router's ``dependencies`` to make all its routes worker-only."""

MAX_OFFSET = 1_000_000_000
"""Paging offsets beyond this are refused (PostgreSQL's OFFSET is a 64-bit integer)."""

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]
"""The ``offset`` query parameter of every list route."""
