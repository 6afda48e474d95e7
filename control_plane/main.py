"""The control plane's ASGI application and its server entry point."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane import credentials
from control_plane.agent_secrets import move_plaintext_secrets
from control_plane.api.main import (
    api_router,
    recordings_audio_router,
    widget_router,
    worker_router,
)
from control_plane.api.request_guard import RequestGuard
from control_plane.api.routes import health
from control_plane.cache import AgentConfigCache, AgentPages, ApiKeyCache
from control_plane.campaigns.runner import CampaignRunner
from control_plane.changes import AGENTS, API_KEYS, Changes
from control_plane.core.config import Settings
from control_plane.core.db import create_engine, create_sessionmaker, run_migrations
from control_plane.knowledge.service import KnowledgeService
from control_plane.livekit import LiveKit
from control_plane.livekit_nodes import LiveKitNodes, NodeSweep
from control_plane.postcall.service import PostCall
from control_plane.ratelimit import RateLimiter
from control_plane.recordings.logging import hide_signed_urls
from control_plane.recordings.service import Recordings
from control_plane.scenarios.runner import ScenarioRunner
from control_plane.security import SecretBox
from control_plane.telephony import service as telephony_service
from control_plane.web import console_router
from control_plane.workers.registry import create_registry
from control_plane.workers.sweeper import LostWorkerSweeper
from stimm import tracing
from stimm.heap import freeze_startup_heap

logger = logging.getLogger("stimm.control_plane")

BOOTSTRAP_KEY_NAME = "bootstrap"


async def ensure_bootstrap_key(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> str | None:
    """Create the first API key when the database has never had one.

    Returns the key when it was generated here (it is then printed once), ``None`` otherwise.
    ``STIMM_BOOTSTRAP_API_KEY``, when set, is registered as that first key instead.
    """
    async with sessionmaker() as db:
        if await credentials.count_api_keys(db):
            return None
        given = settings.bootstrap_api_key.get_secret_value() or None
        row, key = await credentials.create_api_key(db, BOOTSTRAP_KEY_NAME, given)
    if given:
        logger.info("bootstrap API key %s registered from STIMM_BOOTSTRAP_API_KEY", row.prefix)
        return None
    # Deliberately not through logging: the key must not end up in log aggregation.
    sys.stdout.write(
        "\n"
        "==================== STIMM BOOTSTRAP API KEY (shown once) ====================\n"
        f"  {key}\n"
        "  Use it as 'Authorization: Bearer <key>'. Create more with 'stimm api-key create',\n"
        "  then revoke this one with 'stimm api-key revoke " + row.id + "'.\n"
        "==============================================================================\n\n"
    )
    sys.stdout.flush()
    return key


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if request.url.path.startswith(("/api/secrets", "/api/agents", "/api/webhooks")):
        # FastAPI echoes the rejected input; for a secret, an agent's API key or webhook
        # header, or a webhook endpoint's signing secret, that would be the secret.
        errors = [{k: v for k, v in e.items() if k not in ("input", "ctx")} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": errors})
    return await request_validation_exception_handler(request, exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; without ``settings`` they are read from the environment.

    The only place the control plane is wired: every service the routes use is made here from
    ``settings`` and put on ``app.state``, where ``api/deps.py`` finds it. The schema is not
    migrated here: call ``run_migrations`` first (``serve`` does).
    """
    settings = settings or Settings()
    # Created here rather than in the lifespan so that ASGI transports that skip lifespan
    # events (httpx.ASGITransport in tests) still get a working app.
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    cache = AgentConfigCache(settings.redis_url)
    secret_box = SecretBox(settings.secret_key.get_secret_value())
    rate_limiter = RateLimiter(settings.redis_url)
    # what this process keeps in memory, and how it hears of changes made elsewhere
    changes = Changes(settings.redis_url)
    agent_pages = AgentPages(trusted=lambda: changes.listening)
    api_keys = ApiKeyCache(trusted=lambda: changes.listening)
    changes.on(AGENTS, agent_pages.changed)
    changes.on(API_KEYS, api_keys.revoked)
    knowledge = KnowledgeService.from_settings(
        sessionmaker, settings.database_url, settings.knowledge
    )
    livekit = LiveKit(settings)
    # the worker pool: heartbeats, dispatch verification, failing the calls of lost workers
    registry = create_registry(settings.redis_url, settings.pool.worker_ttl_s)
    livekit.set_assignment_check(registry.worker_of, registry.reported)
    # LiveKit's nodes, from the Redis they share with the control plane: a dead node's calls,
    # moved to the node they reconnect to or failed
    livekit_nodes = LiveKitNodes(settings.redis_url) if settings.redis_url else None
    node_sweep = NodeSweep(livekit_nodes, livekit) if livekit_nodes else None
    sweeper = LostWorkerSweeper(
        sessionmaker,
        registry,
        ttl_s=settings.pool.worker_ttl_s,
        interval_s=settings.pool.sweep_interval_s,
        agent_in_room=livekit.agent_in_room,
        nodes=node_sweep,
    )
    campaigns = CampaignRunner(
        sessionmaker,
        settings,
        livekit,
        poll_s=settings.campaign_poll_s,
        lease_s=settings.campaign_lease_s,
    )
    tracer_provider = (
        tracing.tracer_provider("stimm-control-plane", settings.otlp_endpoint)
        if settings.otlp_endpoint
        else None
    )
    recordings = Recordings.from_settings(
        settings.recordings,
        database_url=settings.database_url,
        secret_key=settings.secret_key.get_secret_value(),
        sessionmaker=sessionmaker,
    )
    hide_signed_urls()
    postcall = PostCall(sessionmaker, secret_box, settings.postcall)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        changes.start()
        await ensure_bootstrap_key(sessionmaker, settings)
        for agent_id in await move_plaintext_secrets(sessionmaker, secret_box):
            await cache.invalidate(agent_id)  # the cached copy still holds the plaintext
        knowledge.start()
        sweeper.start()
        recordings.start()  # the retention sweep
        postcall.start()
        # phone numbers back into LiveKit SIP, without delaying startup
        phone_sync = asyncio.create_task(
            telephony_service.sync_numbers(sessionmaker, settings, secret_box)
        )
        campaigns.start()
        logger.info("control plane ready (LiveKit at %s)", settings.livekit_url)
        yield
        phone_sync.cancel()
        await recordings.aclose()
        await sweeper.aclose()
        await registry.aclose()
        if livekit_nodes is not None:
            await livekit_nodes.aclose()
        await campaigns.aclose()
        await knowledge.aclose()
        await postcall.aclose()
        await cache.aclose()
        await rate_limiter.aclose()
        await changes.aclose()
        await engine.dispose()
        if tracer_provider is not None:
            await asyncio.to_thread(tracer_provider.shutdown)  # sends the spans still batched

    app = FastAPI(
        title="Stimm control plane",
        summary="Agents, providers, secrets, sessions and transcripts of a Stimm deployment.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    app.state.livekit = livekit
    app.state.worker_registry = registry
    app.state.campaign_runner = campaigns
    app.state.cache = cache
    app.state.agent_pages = agent_pages
    app.state.api_keys = api_keys
    app.state.changes = changes
    app.state.knowledge = knowledge
    app.state.knowledge_store = knowledge.store  # pinged by /health
    app.state.secret_box = secret_box
    app.state.postcall = postcall
    app.state.rate_limiter = rate_limiter
    app.state.recordings = recordings
    app.state.scenario_runner = ScenarioRunner(
        timeout_s=settings.scenario_timeout_s, max_runs=settings.scenario_max_runs
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(
        RequestGuard,
        max_json_bytes=settings.max_json_body_bytes,
        max_upload_bytes=settings.knowledge.max_upload_bytes,
        max_recording_bytes=recordings.settings.max_bytes,
    )
    app.include_router(api_router)
    app.include_router(worker_router)
    app.include_router(widget_router)
    app.include_router(recordings_audio_router)
    app.include_router(health.router)
    app.include_router(console_router())  # last: its catch-all must not shadow the API
    if tracer_provider is not None:
        _trace_requests(app, tracer_provider)
    return app


UNTRACED_PATHS = "/health,/api/worker/heartbeat"
"""Polled every few seconds by probes and by each worker: a span each would bury the calls."""


def _trace_requests(app: FastAPI, provider: TracerProvider) -> None:
    """A server span per request (``POST /api/sessions``...), child of the caller's
    ``traceparent`` when it sends one; the session route hands its context to the worker."""
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=UNTRACED_PATHS,
        exclude_spans=["receive", "send"],
    )


def serve(host: str = "127.0.0.1", port: int = 8000, settings: Settings | None = None) -> None:
    """Migrate the database, then serve the API with uvicorn until interrupted."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s %(message)s")
    settings = settings or Settings()
    run_migrations(settings.database_url)
    logger.info("serving the control plane on http://%s:%d", host, port)
    app = create_app(settings)
    freeze_startup_heap()
    uvicorn.run(app, host=host, port=port)
