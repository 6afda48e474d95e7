"""API routers of the control plane.

Everything included in ``api_router`` needs an API key; the worker's routes are a separate
router with the worker's own credential (an API key does not open them), and the widget's
session route takes a publishable key only (neither of the others opens it).
"""

from __future__ import annotations

from fastapi import APIRouter

from control_plane.api.deps import ApiKeyAuthDep
from control_plane.api.routes import (
    agents,
    api_keys,
    calls,
    campaigns,
    knowledge_bases,
    mcp,
    phone_numbers,
    providers,
    publishable_keys,
    recordings,
    scenarios,
    secrets,
    sessions,
    telephony,
    webhooks,
    widget,
    worker_api,
    workers,
)

api_router = APIRouter(
    prefix="/api",
    dependencies=[ApiKeyAuthDep],
    responses={429: {"description": "Too many requests from this API key; see Retry-After"}},
)
api_router.include_router(agents.router)
api_router.include_router(scenarios.router)
api_router.include_router(sessions.router)
api_router.include_router(providers.router)
api_router.include_router(secrets.router)
api_router.include_router(api_keys.router)
api_router.include_router(knowledge_bases.router)
api_router.include_router(mcp.router)
api_router.include_router(phone_numbers.router)
api_router.include_router(calls.router)
api_router.include_router(telephony.router)
api_router.include_router(campaigns.router)

# worker pool
api_router.include_router(workers.router)

# embeddable widget: keys are managed with an API key; the widget's own route takes a
# publishable key only
api_router.include_router(publishable_keys.router)
widget_router = widget.router

# recordings: details and signed URL with an API key; the audio behind the URL by its signature
api_router.include_router(recordings.router)
recordings_audio_router = recordings.audio_router
# after the call: webhook endpoints and their delivery log
api_router.include_router(webhooks.router)

worker_router = APIRouter(prefix="/api")
worker_router.include_router(worker_api.router)
