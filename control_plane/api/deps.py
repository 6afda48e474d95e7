"""Every dependency of the routes: the services ``create_app`` put on ``app.state``, the
database session, credentials and shared path/query parameters."""

from __future__ import annotations

import math
import secrets
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane import credentials
from control_plane.cache import AgentConfigCache, AgentPages, ApiKeyCache
from control_plane.campaigns.runner import CampaignRunner
from control_plane.changes import Changes
from control_plane.core.config import Settings
from control_plane.core.db import get_db
from control_plane.knowledge import crud as knowledge_crud
from control_plane.knowledge.models import KnowledgeBase
from control_plane.knowledge.service import KnowledgeService
from control_plane.livekit import LiveKit
from control_plane.models import ApiKey
from control_plane.postcall.service import PostCall
from control_plane.ratelimit import RateLimiter
from control_plane.recordings.service import Recordings
from control_plane.scenarios.runner import ScenarioRunner
from control_plane.security import SecretBox, hash_api_key
from control_plane.workers.registry import WorkerRegistry


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def get_campaign_runner(request: Request) -> CampaignRunner:
    return cast(CampaignRunner, request.app.state.campaign_runner)


async def get_livekit(request: Request) -> LiveKit:
    return cast(LiveKit, request.app.state.livekit)


async def get_cache(request: Request) -> AgentConfigCache:
    return cast(AgentConfigCache, request.app.state.cache)


async def get_agent_pages(request: Request) -> AgentPages:
    return cast(AgentPages, request.app.state.agent_pages)


async def get_changes(request: Request) -> Changes:
    return cast(Changes, request.app.state.changes)


async def get_secret_box(request: Request) -> SecretBox:
    return cast(SecretBox, request.app.state.secret_box)


async def get_rate_limiter(request: Request) -> RateLimiter:
    return cast(RateLimiter, request.app.state.rate_limiter)


async def get_recordings(request: Request) -> Recordings:
    return cast(Recordings, request.app.state.recordings)


async def get_scenario_runner(request: Request) -> ScenarioRunner:
    return cast(ScenarioRunner, request.app.state.scenario_runner)


async def get_knowledge(request: Request) -> KnowledgeService:
    return cast(KnowledgeService, request.app.state.knowledge)


async def get_registry(request: Request) -> WorkerRegistry:
    return cast(WorkerRegistry, request.app.state.worker_registry)


async def get_postcall(request: Request) -> PostCall:
    return cast(PostCall, request.app.state.postcall)


DbDep = Annotated[AsyncSession, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LiveKitDep = Annotated[LiveKit, Depends(get_livekit)]
CampaignRunnerDep = Annotated[CampaignRunner, Depends(get_campaign_runner)]
CacheDep = Annotated[AgentConfigCache, Depends(get_cache)]
AgentPagesDep = Annotated[AgentPages, Depends(get_agent_pages)]
ChangesDep = Annotated[Changes, Depends(get_changes)]
SecretBoxDep = Annotated[SecretBox, Depends(get_secret_box)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
RecordingsDep = Annotated[Recordings, Depends(get_recordings)]
ScenarioRunnerDep = Annotated[ScenarioRunner, Depends(get_scenario_runner)]
KnowledgeDep = Annotated[KnowledgeService, Depends(get_knowledge)]
RegistryDep = Annotated[WorkerRegistry, Depends(get_registry)]


async def get_knowledge_base(db: DbDep, kb_id: str) -> KnowledgeBase:
    """The knowledge base of the path's ``kb_id``, or 404."""
    kb = await knowledge_crud.get_knowledge_base(db, kb_id)
    if kb is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Knowledge base {kb_id} not found")
    return kb


KnowledgeBaseDep = Annotated[KnowledgeBase, Depends(get_knowledge_base)]
PostCallDep = Annotated[PostCall, Depends(get_postcall)]


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


def too_many_requests(detail: str, retry_after: float) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        detail=detail,
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
    )


async def require_api_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_api_key_bearer)],
    db: DbDep,
) -> ApiKey:
    """Let through requests with an active API key (``Authorization: Bearer <key>``), within
    its ``STIMM_REQUESTS_PER_MINUTE_PER_KEY``.

    Every API request runs this: it reads its services off ``app.state`` itself, as each
    dependency FastAPI solves costs every request (``bench/api_load.py --profile``)."""
    if bearer is None:
        raise _unauthorized("An API key is required (Authorization: Bearer <key>)")
    state = request.app.state
    settings, limiter = cast(Settings, state.settings), cast(RateLimiter, state.rate_limiter)
    api_keys = cast(ApiKeyCache, state.api_keys)
    key = await api_keys.find(
        hash_api_key(bearer.credentials),
        lambda: credentials.find_active_api_key(db, bearer.credentials),
    )
    if key is None:
        raise _unauthorized("The API key is unknown or revoked")
    limit = settings.requests_per_minute_per_key
    if (retry_after := await limiter.hit("requests", key.id, limit)) is not None:
        raise too_many_requests(
            f"This API key made more than {limit} requests in a minute "
            "(STIMM_REQUESTS_PER_MINUTE_PER_KEY); retry after the Retry-After seconds",
            retry_after,
        )
    return key


ApiKeyAuthDep = Depends(require_api_key)
"""In a router's ``dependencies``: every route needs an API key."""

CurrentApiKey = Annotated[ApiKey, ApiKeyAuthDep]
"""The API key of the request (checked once per request, however many ask for it)."""

_worker_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="WorkerToken",
    description="The worker's STIMM_WORKER_TOKEN.",
)


async def require_worker(
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
