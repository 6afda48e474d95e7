"""Workers: the live worker pool (API key), and the workers' heartbeats (worker token)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, cast

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, status

from control_plane.api.deps import WorkerAuthDep
from control_plane.core.config import Settings
from control_plane.livekit import LiveKit
from control_plane.workers.config import PoolSettings
from control_plane.workers.models import WorkersPublic
from control_plane.workers.registry import RegistryUnavailable, WorkerRegistry, create_registry
from control_plane.workers.sweeper import LostWorkerSweeper
from stimm.schema import WorkerHeartbeat

logger = logging.getLogger("stimm.control_plane")


def get_registry(request: Request) -> WorkerRegistry:
    state = request.app.state
    if getattr(state, "worker_registry", None) is None:
        # without the lifespan (ASGI test transports) the registry is made on first use
        settings = cast(Settings, state.settings)
        state.worker_registry = create_registry(settings.redis_url, PoolSettings().worker_ttl_s)
    return cast(WorkerRegistry, state.worker_registry)


RegistryDep = Annotated[WorkerRegistry, Depends(get_registry)]


@asynccontextmanager
async def pool_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Worker registry and the lost-worker sweep, for as long as the app runs."""
    pool = PoolSettings()
    settings = cast(Settings, app.state.settings)
    registry = create_registry(settings.redis_url, pool.worker_ttl_s)
    app.state.worker_registry = registry
    livekit = cast(LiveKit, app.state.livekit)
    livekit.set_assignment_check(registry.worker_of)  # dispatch verification
    sweeper = LostWorkerSweeper(
        app.state.sessionmaker,
        registry,
        ttl_s=pool.worker_ttl_s,
        interval_s=pool.sweep_interval_s,
        agent_in_room=livekit.agent_in_room,
    )
    sweeper.start()
    yield
    livekit.set_assignment_check(None)
    await sweeper.aclose()
    await registry.aclose()


def _unavailable(e: RegistryUnavailable) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=str(e),
        headers={"Retry-After": "5"},
    )


router = APIRouter(prefix="/workers", tags=["workers"], lifespan=pool_lifespan)


@router.get("", responses={503: {"description": "The worker registry (Redis) is unreachable"}})
async def list_workers(registry: RegistryDep) -> WorkersPublic:
    """Live workers (heartbeat within STIMM_WORKER_TTL): load, sessions, draining."""
    try:
        workers = await registry.live()
    except RegistryUnavailable as e:
        raise _unavailable(e) from e
    workers.sort(key=lambda w: (w.hostname, w.worker_id))
    return WorkersPublic(
        items=workers,
        count=len(workers),
        sessions=sum(w.active_jobs for w in workers),
        capacity=sum(w.max_sessions for w in workers if not w.draining),
    )


worker_router = APIRouter(prefix="/worker", tags=["worker"], dependencies=[WorkerAuthDep])


@worker_router.post("/heartbeat", status_code=status.HTTP_204_NO_CONTENT)
async def post_heartbeat(registry: RegistryDep, hb: WorkerHeartbeat) -> Response:
    """A worker reports its load and sessions; it stays listed for STIMM_WORKER_TTL."""
    try:
        await registry.put(hb)
    except RegistryUnavailable as e:
        raise _unavailable(e) from e
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@worker_router.delete("/workers/{worker_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_worker(registry: RegistryDep, worker_id: str) -> Response:
    """A worker that finished draining leaves the pool."""
    try:
        await registry.remove(worker_id)
    except RegistryUnavailable as e:
        raise _unavailable(e) from e
    logger.info("worker %s left the pool", worker_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
