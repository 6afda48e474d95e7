"""Changes to what control-plane processes hold in memory, told to all of them.

The agent list's pages and the verified API keys are kept in each process (``cache.py``); a
write made through one replica, or by the CLI, must reach the others. ``Changes.publish`` runs
this process's callbacks at once, then publishes on one Redis channel, which every process
subscribes to. Redis delivers a message to the subscribers connected at that moment only: when
the subscription is lost, and again once it is back, every callback runs as if everything had
changed. Without Redis, or while the subscription is down, ``listening`` is false and the
caches hold nothing between requests: a write nobody can announce (the CLI on a SQLite
database) is still seen by the next request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from control_plane.redis_clients import redis_client, subscriber_client

logger = logging.getLogger("stimm.control_plane")

CHANNEL = "stimm:changes"

AGENTS = "agents"
"""An agent was created, edited, duplicated, deleted or made the default."""
API_KEYS = "api-keys"
"""An API key was revoked (the item is its id)."""

EVERYTHING = "*"
"""The item callbacks get when messages may have been missed."""

RESUBSCRIBE_S = 1.0

Callback = Callable[[str], None]


class Changes:
    """Callbacks by topic, called with the changed item (an id) or ``EVERYTHING``."""

    def __init__(self, redis_url: str | None) -> None:
        self._url = redis_url
        self._redis: Redis | None = redis_client(redis_url) if redis_url else None
        self._callbacks: dict[str, list[Callback]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._listening = False

    @property
    def listening(self) -> bool:
        """Whether this process hears the changes made elsewhere now: Redis is configured and
        the subscription is up. Only then may a cache here outlive a write it cannot see."""
        return self._listening

    def on(self, topic: str, callback: Callback) -> None:
        self._callbacks.setdefault(topic, []).append(callback)

    async def publish(self, topic: str, item: str = EVERYTHING) -> None:
        """Tell this process now, then the others. A Redis that is down is logged, not raised:
        the write it follows has been made."""
        self._deliver(topic, item)
        if self._redis is None:
            return
        try:
            await self._redis.publish(CHANNEL, json.dumps({"topic": topic, "item": item}))
        except RedisError as e:
            logger.warning(
                "other control-plane processes were not told of a change to %s (%s); "
                "their copies expire on their own",
                topic,
                type(e).__name__,
            )

    def start(self) -> None:
        if self._url is not None and self._listener is None:
            self._listener = asyncio.create_task(self._listen(self._url), name="changes")

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self._redis is not None:
            await self._redis.aclose()

    def _deliver(self, topic: str, item: str) -> None:
        for callback in self._callbacks.get(topic, ()):
            callback(item)

    def _deliver_everything(self) -> None:
        for topic in self._callbacks:
            self._deliver(topic, EVERYTHING)

    async def _listen(self, url: str) -> None:
        lost = False
        while True:
            # its own connection, with no read timeout: a quiet channel is not a failure
            client = subscriber_client(url)
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as channel:
                    await channel.subscribe(CHANNEL)
                    # what was published while nobody here listened is lost: start afresh
                    self._deliver_everything()
                    self._listening = True
                    if lost:
                        logger.info("hearing other processes' changes again")
                        lost = False
                    async for message in channel.listen():
                        self._received(message.get("data"))
            except (RedisError, OSError) as e:
                self._listening = False
                if not lost:
                    logger.warning(
                        "not hearing other processes' changes (%s); subscribing again every %.0f s",
                        type(e).__name__,
                        RESUBSCRIBE_S,
                    )
                    lost = True
                self._deliver_everything()
            finally:
                self._listening = False
                await client.aclose()
            await asyncio.sleep(RESUBSCRIBE_S)

    def _received(self, data: object) -> None:
        try:
            change = json.loads(data)  # type: ignore[arg-type]
            topic, item = str(change["topic"]), str(change["item"])
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed change message: %.200r", data)
            return
        self._deliver(topic, item)
