"""Database engine, sessions and migrations (PostgreSQL via asyncpg, SQLite via aiosqlite)."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from fastapi import HTTPException, Request, status
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.core.config import normalize_database_url
from stimm.private_files import private_dir, private_file

logger = logging.getLogger("stimm.control_plane")

CONNECT_TIMEOUT_S = 5.0
"""Seconds to open a PostgreSQL connection: a database that does not answer fails the request
(503) instead of holding it for asyncpg's default minute."""

_UNREACHABLE = (
    ConnectionError,  # refused or reset: asyncpg's connect raises it unwrapped
    TimeoutError,
    socket.gaierror,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,  # the connection was lost mid-request
    sa_exc.TimeoutError,  # no pooled connection came free
)
DATABASE_UNAVAILABLE = "The database is unreachable; try again in a moment."

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def ensure_sqlite_directory(database_url: str) -> None:
    """Create a file-backed SQLite database's folder (0700) and file (0600); a no-op for other
    backends.

    The database holds API-key hashes and encrypted provider secrets, so nobody but its owner
    may read it; SQLite gives its -wal, -shm and journal files the database file's mode.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database).expanduser()
    private_dir(path.parent)
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            private_file(companion)


SQLITE_BUSY_TIMEOUT_S = 30.0
"""Seconds a SQLite write waits for another connection's write to finish. SQLite takes one
writer at a time; with its default 5 s a burst of session requests on a busy machine answered
503 "database is locked" (bench/dispatch.py, 20 at once on 2 cores)."""


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # SQLite ignores FOREIGN KEY clauses unless every connection opts in.
    cursor.execute("PRAGMA foreign_keys=ON")
    # Write-ahead log: readers never wait for the writer, and the writer never for readers.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def create_engine(database_url: str) -> AsyncEngine:
    """Create the async engine for ``database_url`` (no connection is opened yet)."""
    url = normalize_database_url(database_url)
    if make_url(url).get_backend_name() == "sqlite":
        ensure_sqlite_directory(url)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    # pre-ping: connections the database dropped (it restarted, the network broke) are replaced
    return create_async_engine(url, pool_pre_ping=True, connect_args={"timeout": CONNECT_TIMEOUT_S})


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (responses are built after it)."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one database session per request."""
    sessionmaker = cast("async_sessionmaker[AsyncSession]", request.app.state.sessionmaker)
    async with sessionmaker() as db:
        try:
            yield db
        except _UNREACHABLE as e:
            logger.error(
                "database unreachable during %s %s: %r", request.method, request.url.path, e
            )
            raise HTTPException(
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                detail=DATABASE_UNAVAILABLE,
                headers={"Retry-After": "5"},
            ) from e


def alembic_config(database_url: str) -> Config:
    """The Alembic config of the control plane, pointed at ``database_url``."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = normalize_database_url(database_url)
    return config


def run_migrations(database_url: str) -> None:
    """Bring the database schema to the latest revision (``alembic upgrade head``).

    Runs its own event loop, so call it before serving, or via ``asyncio.to_thread`` from async
    code.
    """
    logger.info("applying database migrations")
    command.upgrade(alembic_config(database_url), "heads")
