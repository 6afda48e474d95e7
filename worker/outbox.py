"""What a session reports to the control plane, buffered in order and retried until delivered.

The call never waits on the control plane: turns and events are queued here and posted in the
background, one at a time in order. While the control plane is down, restarting or without its
database, they wait and are retried with backoff; each turn carries a key, so one posted twice
(the first answer was lost) is stored once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from dataclasses import dataclass

from worker.control_plane_client import ControlPlaneClient

logger = logging.getLogger("stimm.worker")

CAPACITY = 1_000
"""Posts a session buffers at most; past it the oldest is dropped (and logged)."""
BACKOFF_S = (0.25, 5.0)
"""First and longest wait between two tries of a post the control plane did not take."""


def flush_grace_s() -> float:
    """Seconds a session's end waits for its buffered posts: ``STIMM_WORKER_FLUSH_GRACE_S``."""
    return float(os.environ.get("STIMM_WORKER_FLUSH_GRACE_S", "20"))


@dataclass(frozen=True)
class _Post:
    path: str
    body: str


class Outbox:
    """Posts to the control plane, in order, from a bounded buffer.

    Args:
        client: The control-plane client.
        capacity: Posts buffered at most.
    """

    def __init__(self, client: ControlPlaneClient, *, capacity: int = CAPACITY) -> None:
        self._client = client
        self._capacity = capacity
        self._queue: deque[_Post] = deque()
        self._sender: asyncio.Task[None] | None = None
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def put(self, path: str, body: str) -> None:
        """Queue a post; it is sent after every post queued before it."""
        if len(self._queue) >= self._capacity:
            lost = self._queue.popleft()
            self.dropped += 1
            logger.error("outbox full (%d posts): dropped %s", self._capacity, lost.path)
        self._queue.append(_Post(path, body))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="stimm-outbox")

    async def _send(self) -> None:
        backoff = BACKOFF_S[0]
        while self._queue:
            post = self._queue[0]
            if await self._client.deliver(post.path, post.body):
                # the head may have been dropped meanwhile (full buffer): only pop what was sent
                if self._queue and self._queue[0] is post:
                    self._queue.popleft()
                backoff = BACKOFF_S[0]
                continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_S[1])

    async def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every buffered post; False if some are still pending."""
        if self._sender is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._sender), timeout)
            except TimeoutError:
                pass
        if self._queue:
            logger.error(
                "control plane unreachable for %.0f s after the session: %d posts not recorded",
                timeout,
                len(self._queue),
            )
            return False
        return True

    async def aclose(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
