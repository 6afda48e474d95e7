"""Caches: agent configs in Redis for the worker's per-call fetch, and the agent list's pages in
process memory.

Only the config is cached, never the decrypted secrets. Writes to an agent invalidate its
config's entry; a cache that is down is skipped, never an error.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from stimm.schema import AgentConfig

logger = logging.getLogger("stimm.control_plane")

CONFIG_TTL_S = 3_600
REDIS_TIMEOUT_S = 1.0


def agent_key(agent_id: str) -> str:
    return f"stimm:agent-config:{agent_id}"


class AgentConfigCache:
    """Agent configs by id in Redis; with no ``redis_url`` every lookup misses."""

    def __init__(self, redis_url: str | None) -> None:
        self._redis: Redis | None = (
            Redis.from_url(
                redis_url,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
            )
            if redis_url
            else None
        )

    @property
    def configured(self) -> bool:
        return self._redis is not None

    async def get(self, agent_id: str) -> AgentConfig | None:
        if self._redis is None:
            return None
        try:
            raw = await self._redis.get(agent_key(agent_id))
        except RedisError as e:
            logger.warning("agent config cache unavailable (%s)", type(e).__name__)
            return None
        if raw is None:
            return None
        try:
            return AgentConfig.model_validate_json(raw)
        except ValidationError:
            # Written by an older version of the schema: refetch from the database.
            return None

    async def put(self, agent_id: str, config: AgentConfig) -> None:
        if self._redis is None:
            return
        try:
            await self._redis.set(agent_key(agent_id), config.model_dump_json(), ex=CONFIG_TTL_S)
        except RedisError as e:
            logger.warning("agent config cache unavailable (%s)", type(e).__name__)

    async def invalidate(self, agent_id: str) -> None:
        if self._redis is None:
            return
        try:
            await self._redis.delete(agent_key(agent_id))
        except RedisError as e:
            # A stale entry would outlive the update: say so loudly.
            logger.error(
                "could not invalidate the cached config of agent %s (%s); it expires in %d s",
                agent_id,
                type(e).__name__,
                CONFIG_TTL_S,
            )

    async def ping(self) -> str:
        if self._redis is None:
            return "not configured"
        try:
            await self._redis.ping()
        except (RedisError, OSError) as e:
            return f"error: {type(e).__name__}"
        return "ok"

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


class AgentPages:
    """``GET /api/agents`` pages as sent, for the agent table's current version
    (``crud.agents_version``) in this process.

    The console lists agents on every visit and a deployment changes them rarely: loading,
    validating and serializing every agent per request was most of the request's CPU. The
    version is read from the database on each request, so a change made through any replica
    is seen at once; pages of an older version are dropped when the version changes.
    """

    def __init__(self, max_pages: int = 64) -> None:
        self._max_pages = max_pages
        self._version: object = None
        self._pages: dict[tuple[int, int], bytes] = {}

    def get(self, version: object, limit: int, offset: int) -> bytes | None:
        return self._pages.get((limit, offset)) if version == self._version else None

    def put(self, version: object, limit: int, offset: int, body: bytes) -> None:
        if version != self._version:
            self._version, self._pages = version, {}
        if len(self._pages) < self._max_pages:
            self._pages[(limit, offset)] = body
