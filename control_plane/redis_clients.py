"""The control plane's Redis clients.

Every command waits at most ``REDIS_TIMEOUT_S``: a Redis that is down fails the call fast, and
each user then falls back (a local count, a database read) or reports it, instead of holding
the request. A subscription's client has no read timeout: a quiet channel is not a failure.
"""

from __future__ import annotations

from redis.asyncio import Redis

REDIS_TIMEOUT_S = 1.0


def redis_client(url: str) -> Redis:
    """A client for commands (connection pooled, ``REDIS_TIMEOUT_S`` per command)."""
    return Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )


def subscriber_client(url: str) -> Redis:
    """A client for one pub/sub subscription: a timeout to connect, none to read."""
    return Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_keepalive=True)
