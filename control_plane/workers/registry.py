"""Live workers, from their heartbeats: in Redis with a TTL, or in memory without Redis.

With Redis every control plane replica sees every worker; the in-memory registry serves one
control plane process (``stimm dev``, a single container).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Protocol

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from control_plane.errors import ControlPlaneError
from control_plane.workers.models import WorkerPublic
from stimm.schema import WorkerHeartbeat

logger = logging.getLogger("stimm.control_plane")

KEY_PREFIX = "stimm:worker:"
REDIS_TIMEOUT_S = 1.0


class RegistryUnavailable(ControlPlaneError):
    """The registry's Redis cannot be reached."""

    retryable = True


def to_public(hb: WorkerHeartbeat, seen_at: datetime) -> WorkerPublic:
    full = hb.draining or hb.load >= hb.threshold
    return WorkerPublic(**hb.model_dump(), last_seen_at=seen_at, full=full)


class WorkerRegistry(Protocol):
    async def put(self, hb: WorkerHeartbeat) -> None: ...
    async def remove(self, worker_id: str) -> None: ...
    async def live(self) -> list[WorkerPublic]: ...
    async def worker_of(self, session_id: str) -> str | None: ...
    async def aclose(self) -> None: ...


class MemoryRegistry:
    """Heartbeats in this process, expired after ``ttl_s``."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._workers: dict[str, tuple[float, WorkerPublic]] = {}

    async def put(self, hb: WorkerHeartbeat) -> None:
        self._workers[hb.worker_id] = (time.monotonic(), to_public(hb, datetime.now(UTC)))

    async def remove(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)

    async def live(self) -> list[WorkerPublic]:
        cutoff = time.monotonic() - self.ttl_s
        self._workers = {k: v for k, v in self._workers.items() if v[0] >= cutoff}
        return [w for _, w in self._workers.values()]

    async def worker_of(self, session_id: str) -> str | None:
        return _worker_of(await self.live(), session_id)

    async def aclose(self) -> None:
        self._workers.clear()


class RedisRegistry:
    """One key per worker, ``SET ... PX ttl`` on each heartbeat; Redis expires the silent."""

    def __init__(self, redis_url: str, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._redis = Redis.from_url(
            redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )

    async def put(self, hb: WorkerHeartbeat) -> None:
        body = to_public(hb, datetime.now(UTC)).model_dump_json()
        try:
            await self._redis.set(KEY_PREFIX + hb.worker_id, body, px=int(self.ttl_s * 1000))
        except RedisError as e:
            raise RegistryUnavailable(f"worker registry (Redis) unavailable: {e}") from e

    async def remove(self, worker_id: str) -> None:
        try:
            await self._redis.delete(KEY_PREFIX + worker_id)
        except RedisError as e:
            raise RegistryUnavailable(f"worker registry (Redis) unavailable: {e}") from e

    async def live(self) -> list[WorkerPublic]:
        try:
            keys = [k async for k in self._redis.scan_iter(match=KEY_PREFIX + "*", count=500)]
            values = await self._redis.mget(keys) if keys else []
        except RedisError as e:
            raise RegistryUnavailable(f"worker registry (Redis) unavailable: {e}") from e
        workers = []
        for raw in values:
            if raw is None:  # expired between SCAN and MGET
                continue
            try:
                workers.append(WorkerPublic.model_validate_json(raw))
            except ValidationError:
                logger.warning("unreadable worker entry in Redis; ignored")
        return workers

    async def worker_of(self, session_id: str) -> str | None:
        return _worker_of(await self.live(), session_id)

    async def aclose(self) -> None:
        await self._redis.aclose()


def _worker_of(workers: list[WorkerPublic], session_id: str) -> str | None:
    return next((w.worker_id for w in workers if session_id in w.sessions), None)


def create_registry(redis_url: str | None, ttl_s: float) -> WorkerRegistry:
    return RedisRegistry(redis_url, ttl_s) if redis_url else MemoryRegistry(ttl_s)
