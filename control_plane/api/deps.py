"""Dependencies shared by the routes."""

from __future__ import annotations

import secrets
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.core.config import Settings
from control_plane.core.db import get_session
from control_plane.livekit import LiveKit


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_livekit(request: Request) -> LiveKit:
    return cast(LiveKit, request.app.state.livekit)


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LiveKitDep = Annotated[LiveKit, Depends(get_livekit)]

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
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="A valid worker token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


WorkerAuthDep = Depends(require_worker)
"""Put in a router's ``dependencies`` to make all its routes worker-only."""
