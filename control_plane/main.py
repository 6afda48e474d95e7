"""The control plane's ASGI application and its server entry point."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from control_plane.api.main import api_router
from control_plane.api.routes import health
from control_plane.core.config import Settings
from control_plane.core.db import create_engine, create_sessionmaker, run_migrations
from control_plane.livekit import LiveKit

logger = logging.getLogger("stimm.control_plane")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; without ``settings`` they are read from the environment.

    The schema is not migrated here: call ``run_migrations`` first (``serve`` does).
    """
    settings = settings or Settings()
    # Created here rather than in the lifespan so that ASGI transports that skip lifespan
    # events (httpx.ASGITransport in tests) still get a working app.
    engine = create_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        logger.info("control plane ready (LiveKit at %s)", settings.livekit_url)
        yield
        await engine.dispose()

    app = FastAPI(
        title="Stimm control plane",
        summary="Agents, sessions and transcripts of a Stimm deployment.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.livekit = LiveKit(settings)
    app.include_router(api_router)
    app.include_router(health.router)
    return app


def serve(host: str = "127.0.0.1", port: int = 8000, settings: Settings | None = None) -> None:
    """Migrate the database, then serve the API with uvicorn until interrupted."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s %(message)s")
    settings = settings or Settings()
    run_migrations(settings.database_url)
    logger.info("serving the control plane on http://%s:%d", host, port)
    uvicorn.run(create_app(settings), host=host, port=port)
