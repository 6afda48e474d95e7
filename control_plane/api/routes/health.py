"""Liveness and database reachability."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Response, status
from sqlalchemy import literal
from sqlmodel import select

from control_plane.api.deps import SessionDep
from control_plane.models import HealthStatus

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(tags=["health"])

DATABASE_CHECK_TIMEOUT_S = 5.0


@router.get(
    "/health",
    responses={503: {"model": HealthStatus, "description": "The database is unreachable"}},
)
async def health(db: SessionDep, response: Response) -> HealthStatus:
    """Report whether the service and its database are usable."""
    try:
        await asyncio.wait_for(db.exec(select(literal(1))), DATABASE_CHECK_TIMEOUT_S)
    except Exception as e:  # any failure means "not healthy", never a 500
        logger.warning("health check: database unreachable (%s)", type(e).__name__)
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return HealthStatus(status="error", database=f"error: {_describe(e)}")
    return HealthStatus(status="ok", database="ok")


def _describe(error: BaseException) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"[:200]
