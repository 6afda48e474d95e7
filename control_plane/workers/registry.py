"""Live workers, from their heartbeats: in Redis with a TTL, or in memory without Redis.

With Redis every control plane replica sees every worker; the in-memory registry serves one
control plane process (``stimm dev``, a single container).

A session request waits for the worker that takes its job (``reported``): the heartbeat a
worker sends as it launches the job wakes the request at once, through a Redis channel each
replica listens on (one subscription per process), rather than at its next read of the
registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Protocol

from pydantic import ValidationError
from redis.exceptions import RedisError

from control_plane.errors import ControlPlaneError
from control_plane.redis_clients import redis_client, subscriber_client
from control_plane.workers.models import WorkerPublic
from stimm.schema import WorkerHeartbeat

logger = logging.getLogger("stimm.control_plane")

KEY_PREFIX = "stimm:worker:"
BEATS_CHANNEL = "stimm:worker-sessions"
"""Each heartbeat that lists sessions is published here: ``{"worker_id", "sessions"}``."""
RESUBSCRIBE_S = (0.5, 5.0)
"""First and longest wait before subscribing again after the channel's connection failed."""


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
    async def reported(self, session_id: str, timeout: float) -> str | None: ...
    async def aclose(self) -> None: ...


class SessionWaiters:
    """Requests of this process waiting for a heartbeat that lists their session."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Future[str]]] = {}

    async def wait(self, session_id: str, timeout: float) -> str | None:
        """The worker whose heartbeat lists ``session_id`` within ``timeout`` s, else ``None``.

        Only heartbeats from now on count: read the registry before waiting."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.setdefault(session_id, set())
        waiting.add(future)
        try:
            await asyncio.wait({future}, timeout=timeout)
            return future.result() if future.done() else None
        finally:
            waiting.discard(future)
            if not waiting:
                self._waiting.pop(session_id, None)
            future.cancel()

    def reported(self, worker_id: str, sessions: list[str]) -> None:
        for session_id in sessions:
            for future in self._waiting.get(session_id, ()):
                if not future.done():
                    future.set_result(worker_id)


class MemoryRegistry:
    """Heartbeats in this process, expired after ``ttl_s``."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._workers: dict[str, tuple[float, WorkerPublic]] = {}
        self._waiters = SessionWaiters()

    async def put(self, hb: WorkerHeartbeat) -> None:
        self._workers[hb.worker_id] = (time.monotonic(), to_public(hb, datetime.now(UTC)))
        self._waiters.reported(hb.worker_id, hb.sessions)

    async def remove(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)

    async def live(self) -> list[WorkerPublic]:
        cutoff = time.monotonic() - self.ttl_s
        self._workers = {k: v for k, v in self._workers.items() if v[0] >= cutoff}
        return [w for _, w in self._workers.values()]

    async def worker_of(self, session_id: str) -> str | None:
        return _worker_of(await self.live(), session_id)

    async def reported(self, session_id: str, timeout: float) -> str | None:
        return await self._waiters.wait(session_id, timeout)

    async def aclose(self) -> None:
        self._workers.clear()


class RedisRegistry:
    """One key per worker, ``SET ... PX ttl`` on each heartbeat; Redis expires the silent."""

    def __init__(self, redis_url: str, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._url = redis_url
        self._redis = redis_client(redis_url)
        self._waiters = SessionWaiters()
        self._listener: asyncio.Task[None] | None = None

    async def put(self, hb: WorkerHeartbeat) -> None:
        body = to_public(hb, datetime.now(UTC)).model_dump_json()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(KEY_PREFIX + hb.worker_id, body, px=int(self.ttl_s * 1000))
                if hb.sessions:
                    beat = {"worker_id": hb.worker_id, "sessions": hb.sessions}
                    pipe.publish(BEATS_CHANNEL, json.dumps(beat))
                await pipe.execute()
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

    async def reported(self, session_id: str, timeout: float) -> str | None:
        if self._listener is None or self._listener.done():
            # the first wait subscribes; it may miss a heartbeat sent meanwhile, which the
            # caller's next read of the registry finds
            self._listener = asyncio.create_task(self._listen(), name="registry-beats")
        return await self._waiters.wait(session_id, timeout)

    async def _listen(self) -> None:
        """Relay published heartbeats to this process's waiters, subscribed again (with
        backoff) whenever the connection fails; waiters meanwhile find their worker by
        reading the registry."""
        backoff = RESUBSCRIBE_S[0]
        while True:
            # its own connection, with no read timeout: a quiet channel is not a failure
            client = subscriber_client(self._url)
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as channel:
                    await channel.subscribe(BEATS_CHANNEL)
                    backoff = RESUBSCRIBE_S[0]
                    async for message in channel.listen():
                        self._relay(message.get("data"))
            except (RedisError, OSError) as e:
                logger.debug("worker heartbeat channel lost (%s); subscribing again", e)
            finally:
                await client.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RESUBSCRIBE_S[1])

    def _relay(self, data: object) -> None:
        try:
            beat = json.loads(data)  # type: ignore[arg-type]
            worker_id, sessions = str(beat["worker_id"]), [str(s) for s in beat["sessions"]]
        except (TypeError, ValueError, KeyError):
            logger.warning("unreadable message on %s; ignored", BEATS_CHANNEL)
            return
        self._waiters.reported(worker_id, sessions)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()


def _worker_of(workers: list[WorkerPublic], session_id: str) -> str | None:
    return next((w.worker_id for w in workers if session_id in w.sessions), None)


def create_registry(redis_url: str | None, ttl_s: float) -> WorkerRegistry:
    return RedisRegistry(redis_url, ttl_s) if redis_url else MemoryRegistry(ttl_s)
