"""Helpers shared by the control plane's integration tests: a fresh migrated PostgreSQL
database, settings, an authenticated in-process client, a private Redis server, and the body of
a valid agent (``agent_body``)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from control_plane import credentials
from control_plane.core.config import Settings
from control_plane.core.db import run_migrations
from control_plane.main import create_app
from stimm.stack.process import ManagedProcess, free_port, tcp_open

DATABASE_URL = os.environ.get(
    "STIMM_TEST_DATABASE_URL", "postgresql+asyncpg://stimm:stimm@127.0.0.1:5432/stimm_test"
)
"""The PostgreSQL server whose maintenance database the tests create their databases from."""
WORKER_TOKEN = "integration-worker-token-" + secrets.token_hex(8)
SECRET_KEY = secrets.token_urlsafe(32)
TOKEN_TTL_S = 900
WORKER_HEADERS = {"Authorization": f"Bearer {WORKER_TOKEN}"}


def closed_port_url() -> str:
    """An http URL on localhost where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def agent_body(name: str = "Receptionist", **overrides: Any) -> dict[str, Any]:
    """The body of ``POST /api/agents`` for a valid agent; ``overrides`` replace its fields."""
    return {
        "name": name,
        "instructions": "You answer the phone for a dental practice.",
        "greeting": "Hello, how can I help?",
        "llm": {"provider": "openai", "model": "gpt-4o-mini", "options": {"temperature": 0.3}},
        **overrides,
    }


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "livekit_url": closed_port_url(),
        "livekit_api_key": "APIintegration",
        "livekit_api_secret": secrets.token_urlsafe(32),
        "worker_token": WORKER_TOKEN,
        "secret_key": SECRET_KEY,
        "session_token_ttl_s": TOKEN_TTL_S,
        "redis_url": None,
        "dev": False,
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def fresh_database(base_url: str) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database, dropped afterwards."""
    url = make_url(base_url)
    maintenance_dsn = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    name = f"stimm_cp_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(maintenance_dsn)
    except (OSError, asyncpg.PostgresError) as e:
        pytest.fail(f"PostgreSQL is not reachable at {url!r} (set STIMM_TEST_DATABASE_URL): {e}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        test_url = url.set(database=name).render_as_string(hide_password=False)
        await asyncio.to_thread(run_migrations, test_url)
        yield test_url
    finally:
        await _drop_database(admin, name)
        await admin.close()


async def _drop_database(admin: asyncpg.Connection, name: str) -> None:
    # WITH (FORCE) may not terminate an autovacuum worker busy in the database
    # (it has no role the test role is a member of): wait for it to finish.
    for _ in range(40):
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except asyncpg.InsufficientPrivilegeError:
            await asyncio.sleep(0.25)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def new_api_key(app: FastAPI, name: str = "test") -> tuple[str, str]:
    """Create an API key directly in the database; returns (id, key)."""
    async with app.state.sessionmaker() as db:
        row, key = await credentials.create_api_key(db, name)
    return row.id, key


@asynccontextmanager
async def app_client(
    settings: Settings,
    *,
    authenticated: bool = True,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app in-process (no lifespan) and a client that sends a fresh API key."""
    app = create_app(settings)
    headers: dict[str, str] = {}
    try:
        if authenticated:
            _, key = await new_api_key(app)
            headers["Authorization"] = f"Bearer {key}"
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://control-plane",
            headers=headers,
        ) as client:
            yield app, client
    finally:
        await app.state.postcall.aclose()
        await app.state.changes.aclose()
        await app.state.cache.aclose()
        await app.state.engine.dispose()


@contextmanager
def redis_server(log_dir: Path) -> Iterator[str]:
    """A private redis-server on a free port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = ManagedProcess(
        "redis",
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        log_dir=log_dir,
    )
    proc.start()
    try:
        proc.wait_ready(lambda: tcp_open(port), timeout=15)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.stop()
