"""API router of the control plane."""

from __future__ import annotations

from fastapi import APIRouter

from control_plane.api.routes import agents, sessions, worker

api_router = APIRouter(prefix="/api")
api_router.include_router(agents.router)
api_router.include_router(sessions.router)
api_router.include_router(worker.router)
