"""Alembic environment: async engine, URL from the caller or from the control plane settings."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import control_plane.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from control_plane.core.config import DatabaseSettings, normalize_database_url
from control_plane.core.db import ensure_sqlite_directory

config = context.config
target_metadata = SQLModel.metadata

# `run_migrations()` passes the URL as an attribute and keeps the application's logging;
# the alembic command line configures logging from the ini file.
_programmatic_url: str | None = config.attributes.get("database_url")
if _programmatic_url is None and config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = _programmatic_url or config.get_main_option("sqlalchemy.url")
    if url:
        return normalize_database_url(url)
    return DatabaseSettings().database_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    url = _database_url()
    ensure_sqlite_directory(url)
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    asyncio.run(_run_online())
