"""Reachability of the control plane's dependencies: database, Redis, Qdrant, LiveKit."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Literal

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import literal
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from control_plane.api.deps import CacheDep, SettingsDep
from control_plane.models import HealthStatus
from control_plane.probes import probe_client

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_S = 5.0
KNOWLEDGE_STORE_STATE = "knowledge_store"
"""``app.state`` attribute of the knowledge-base vector store, if it has a ``ping()``."""


@router.get(
    "/health",
    responses={503: {"model": HealthStatus, "description": "The database is unreachable"}},
)
async def health(
    settings: SettingsDep, cache: CacheDep, request: Request, response: Response
) -> HealthStatus:
    """Whether each dependency is reachable; 503 when the database is not."""
    database, redis, qdrant, livekit = await asyncio.gather(
        _check(_database(request.app.state.engine)),
        _check(cache.ping()),
        _check(_qdrant(request)),
        _check(_livekit(settings.livekit_url)),
    )
    overall: Literal["ok", "degraded", "error"]
    if database != "ok":
        logger.warning("health check: database unreachable (%s)", database)
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        overall = "error"
    elif any(v.startswith("error") for v in (redis, qdrant, livekit)):
        overall = "degraded"
    else:
        overall = "ok"
    return HealthStatus(
        status=overall, database=database, redis=redis, qdrant=qdrant, livekit=livekit
    )


async def _check(probe: Any) -> str:
    try:
        return str(await asyncio.wait_for(probe, CHECK_TIMEOUT_S))
    except Exception as e:  # any failure means "not reachable", never a 500
        return f"error: {_describe(e)}"


async def _database(engine: AsyncEngine) -> str:
    # a connection of its own, back in the pool as soon as it answered: one held for the
    # request would wait on the slower probes, and a burst of health checks then starved
    # each other of connections into timeouts (503s)
    async with engine.connect() as conn:
        await conn.execute(select(literal(1)))
    return "ok"


async def _qdrant(request: Request) -> str:
    store = getattr(request.app.state, KNOWLEDGE_STORE_STATE, None)
    ping = getattr(store, "ping", None)
    if ping is None:
        return "not configured"
    result = ping()
    if inspect.isawaitable(result):
        result = await result
    return "ok" if result in (None, True, "ok") else str(result)


async def _livekit(url: str) -> str:
    http_url = url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    async with probe_client(CHECK_TIMEOUT_S) as http:
        resp = await http.get(http_url + "/")
    return "ok" if resp.status_code < 500 else f"error: HTTP {resp.status_code}"


def _describe(error: BaseException) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"[:200]
