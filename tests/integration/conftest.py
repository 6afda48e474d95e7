"""Fixtures shared by the integration tests: a fresh migrated PostgreSQL database and a
private Redis per module, and the control plane in-process with a client that sends an API key.
A module that needs another app (unauthenticated, Redis, its own knowledge store) overrides
``app_and_client``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from tests.integration.control_plane_env import (
    DATABASE_URL,
    app_client,
    fresh_database,
    make_settings,
    redis_server,
)


@pytest_asyncio.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for this module, dropped afterwards."""
    async with fresh_database(DATABASE_URL) as url:
        yield url


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server for this module."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def app_and_client(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app (no lifespan) and a client that sends a fresh API key."""
    async with app_client(make_settings(database_url)) as pair:
        yield pair


@pytest.fixture
def app(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    return app_and_client[0]


@pytest.fixture
def client(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    """Sends an API key on every request."""
    return app_and_client[1]
