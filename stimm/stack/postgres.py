"""The machine's PostgreSQL cluster, as the local stack and the tests use it."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess

from .process import StackError

logger = logging.getLogger("stimm.stack")

ROLE = "stimm"
PASSWORD = "stimm"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _psql(sql: str, db: str = "postgres") -> str:
    proc = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-d", db, "-tAc", sql],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"psql failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def ensure_cluster() -> None:
    """Start the first PostgreSQL cluster of this machine if it is down."""
    if shutil.which("pg_lsclusters") is None:
        raise StackError("PostgreSQL is not installed (apt-get install postgresql)")
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    clusters = [line.split() for line in out.stdout.splitlines() if line.strip()]
    if not clusters:
        raise StackError("no PostgreSQL cluster on this machine (pg_createcluster 15 main)")
    version, name, _port, status = clusters[0][:4]
    if status != "online":
        logger.info("starting PostgreSQL cluster %s/%s", version, name)
        subprocess.run(["pg_ctlcluster", version, name, "start"], check=True)


def cluster_port() -> int:
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[2])


def ensure_database(name: str, *, fresh: bool = False) -> str:
    """Make sure role ``stimm`` and database ``name`` exist; return its asyncpg URL.

    With ``fresh=True`` an existing database of that name is dropped first.
    """
    if not _NAME.match(name):
        raise ValueError(f"invalid database name {name!r}")
    ensure_cluster()
    if _psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}'") != "1":
        _psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}' CREATEDB")
    exists = _psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"
    if exists and fresh:
        _psql(f"DROP DATABASE {name} WITH (FORCE)")
        exists = False
    if not exists:
        _psql(f"CREATE DATABASE {name} OWNER {ROLE}")
    return f"postgresql+asyncpg://{ROLE}:{PASSWORD}@127.0.0.1:{cluster_port()}/{name}"


def drop_database(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"invalid database name {name!r}")
    _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
