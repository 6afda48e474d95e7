"""Caches: agent configs in Redis for the worker's per-call fetch; the agent list's pages and the
API keys of recent requests in process memory.

Only the config is cached, never the decrypted secrets. Writes to an agent invalidate its
config's entry; a cache that is down is skipped, never an error.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from control_plane.changes import EVERYTHING
from control_plane.models import ApiKey
from control_plane.redis_clients import redis_client
from stimm.schema import AgentConfig

logger = logging.getLogger("stimm.control_plane")

CONFIG_TTL_S = 3_600


def agent_key(agent_id: str) -> str:
    return f"stimm:agent-config:{agent_id}"


class AgentConfigCache:
    """Agent configs by id in Redis; with no ``redis_url`` every lookup misses."""

    def __init__(self, redis_url: str | None) -> None:
        self._redis: Redis | None = redis_client(redis_url) if redis_url else None

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


AgentsVersion = tuple[int, str]
"""``crud.agents_version``: how many agents there are and when the latest was written."""


class AgentPages:
    """``GET /api/agents`` pages as sent, for the agent table's current version
    (``crud.agents_version``) in this process.

    The console lists agents on every visit and a deployment changes them rarely: loading,
    validating and serializing every agent per request was most of the request's CPU, and
    reading the version on every request was most of what was left. While ``trusted()`` (this
    process hears every agent write, ``changes.Changes.listening``) the version is read again
    once ``recheck_s`` has passed, and at once after ``changed``: every agent write through
    any replica calls it (``changes.AGENTS``); otherwise on every request. Pages of an older
    version are dropped when the version changes.
    """

    def __init__(
        self, trusted: Callable[[], bool], max_pages: int = 64, recheck_s: float = 1.0
    ) -> None:
        self._trusted = trusted
        self._max_pages = max_pages
        self.recheck_s = recheck_s
        self._version: AgentsVersion | None = None
        self._pages: dict[tuple[int, int], bytes] = {}
        self._read_at = -math.inf  # when the read that found ``_version`` started
        self._changed_at = -math.inf

    async def version(self, read: Callable[[], Awaitable[AgentsVersion]]) -> AgentsVersion:
        """The current version: the one known, or ``read()``'s when it may be out of date."""
        now = time.monotonic()
        fresh = self._read_at > self._changed_at and now - self._read_at < self.recheck_s
        if fresh and self._version is not None and self._trusted():
            return self._version
        version = await read()
        if version != self._version:
            self._version, self._pages = version, {}
        if now > self._changed_at:  # a change during the read may be missing from it
            self._read_at = now
        return version

    def changed(self, _agent_id: str = EVERYTHING) -> None:
        self._changed_at = time.monotonic()

    def get(self, version: AgentsVersion, limit: int, offset: int) -> bytes | None:
        return self._pages.get((limit, offset)) if version == self._version else None

    def put(self, version: AgentsVersion, limit: int, offset: int, body: bytes) -> None:
        if version != self._version:
            self._version, self._pages = version, {}
        if len(self._pages) < self._max_pages:
            self._pages[(limit, offset)] = body


class ApiKeyCache:
    """Active API keys this process found, by their hash, for ``ttl_s``: a request with a key
    seen lately reads no database.

    Keys are remembered only while ``trusted()``: while this process hears every revocation,
    made through any replica or by the CLI (``changes.Changes.listening``, on Redis). A
    revocation drops the key at once (``revoked``, on ``changes.API_KEYS``); ``ttl_s`` bounds
    how long one lost on the way keeps working here. Unknown keys are never remembered.
    """

    def __init__(
        self, trusted: Callable[[], bool], ttl_s: float = 5.0, max_keys: int = 10_000
    ) -> None:
        self._trusted = trusted
        self.ttl_s = ttl_s
        self._max_keys = max_keys
        self._keys: dict[str, tuple[float, ApiKey]] = {}
        self._revoked_at = -math.inf

    async def find(
        self, key_hash: str, read: Callable[[], Awaitable[ApiKey | None]]
    ) -> ApiKey | None:
        """The active key of ``key_hash``: remembered, or ``read()``'s."""
        now = time.monotonic()
        known = self._keys.get(key_hash)
        if known is not None and now - known[0] < self.ttl_s and self._trusted():
            return known[1]
        row = await read()
        if row is None or not self._trusted():
            self._keys.pop(key_hash, None)
            return row
        # a copy: the request's session may expire or roll back its own row
        key = ApiKey.model_validate(row.model_dump())
        if now > self._revoked_at:  # a revocation during the read may be missing from it
            if len(self._keys) >= self._max_keys:
                self._keys = {h: v for h, v in self._keys.items() if now - v[0] < self.ttl_s}
            if len(self._keys) < self._max_keys:
                self._keys[key_hash] = (now, key)
        return key

    def revoked(self, key_id: str) -> None:
        """Forget ``key_id`` (every key for ``changes.EVERYTHING``)."""
        self._revoked_at = time.monotonic()
        self._keys = (
            {}
            if key_id == EVERYTHING
            else {h: v for h, v in self._keys.items() if v[1].id != key_id}
        )
