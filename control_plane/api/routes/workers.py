"""Workers: the live worker pool (API key). The workers' own heartbeats are in ``worker.py``."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from control_plane.api.deps import RegistryDep
from control_plane.workers.models import WorkersPublic
from control_plane.workers.registry import RegistryUnavailable


def registry_unavailable(e: RegistryUnavailable) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=str(e),
        headers={"Retry-After": "5"},
    )


router = APIRouter(prefix="/workers", tags=["workers"])


@router.get("", responses={503: {"description": "The worker registry (Redis) is unreachable"}})
async def list_workers(registry: RegistryDep) -> WorkersPublic:
    """Live workers (heartbeat within STIMM_WORKER_TTL): load, sessions, draining."""
    try:
        workers = await registry.live()
    except RegistryUnavailable as e:
        raise registry_unavailable(e) from e
    workers.sort(key=lambda w: (w.hostname, w.worker_id))
    return WorkersPublic(
        items=workers,
        count=len(workers),
        sessions=sum(w.active_jobs for w in workers),
        capacity=sum(w.max_sessions for w in workers if not w.draining),
    )
