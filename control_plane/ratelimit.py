"""Per-API-key request counting: fixed one-minute windows, in Redis when it is configured (so
every control-plane replica counts together), in this process otherwise.

A fixed window lets a key send up to twice its limit across a window boundary; the point is to
stop a runaway client, not to meter exactly.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from control_plane.redis_clients import redis_client

logger = logging.getLogger("stimm.control_plane")

WINDOW_S = 60


class RateLimiter:
    """Counts requests per (scope, key) and minute; with no ``redis_url``, in memory."""

    def __init__(self, redis_url: str | None) -> None:
        self._redis: Redis | None = redis_client(redis_url) if redis_url else None
        self._local: dict[tuple[str, str], tuple[int, int]] = {}

    async def hit(self, scope: str, key: str, limit: int) -> float | None:
        """Count one request of ``key``; the seconds until it may retry when this one is over
        ``limit`` per minute, ``None`` when it is allowed (always, for a limit of 0)."""
        if limit <= 0:
            return None
        now = time.time()
        window = int(now // WINDOW_S)
        count = await self._count_in_redis(scope, key, window)
        if count is None:
            count = self._count_locally(scope, key, window)
        if count <= limit:
            return None
        return (window + 1) * WINDOW_S - now

    async def _count_in_redis(self, scope: str, key: str, window: int) -> int | None:
        if self._redis is None:
            return None
        name = f"stimm:rate:{scope}:{key}:{window}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, WINDOW_S + 5)
                count, _ = await pipe.execute()
        except RedisError as e:
            # counting in this process is still a limit, if a looser one across replicas
            logger.warning("rate limits counted locally: Redis unavailable (%s)", type(e).__name__)
            return None
        return int(count)

    def _count_locally(self, scope: str, key: str, window: int) -> int:
        seen_window, count = self._local.get((scope, key), (window, 0))
        count = count + 1 if seen_window == window else 1
        if len(self._local) > 100_000:  # keys of past windows
            self._local = {k: v for k, v in self._local.items() if v[0] == window}
        self._local[(scope, key)] = (window, count)
        return count

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
