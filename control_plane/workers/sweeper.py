"""Fail the sessions of workers that stopped heartbeating (killed, crashed, cut off).

A session is lost when its worker's heartbeat expired *and* LiveKit no longer has an agent in
its room: heartbeats alone would fail the calls of a worker that is only slow to report (a
saturated machine, a control plane that answered late).

Heartbeat expiry rather than LiveKit webhooks: a killed worker's room lives on (the caller is
still in it) until LiveKit notices the agent's connection is gone, and a webhook needs the
control plane to be reachable from LiveKit; heartbeats bound the detection to
``worker_ttl_s + sweep_interval_s`` with nothing but the worker → control plane path that
every call already uses.

The same loop follows the calls of a LiveKit node that died (``control_plane/livekit_nodes.py``:
moved to the node they reconnected to, or failed), when LiveKit's Redis is the control
plane's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane import crud
from control_plane.errors import LiveKitError
from control_plane.livekit_nodes import NodesUnavailable, NodeSweep
from control_plane.models import VoiceSession, utcnow
from control_plane.workers.registry import RegistryUnavailable, WorkerRegistry

logger = logging.getLogger("stimm.control_plane")

LOST_REASON = "worker lost: worker {worker_id} stopped sending heartbeats mid-call"


async def sweep_once(
    db: AsyncSession,
    registry: WorkerRegistry,
    *,
    ttl_s: float,
    agent_in_room: Callable[[str], Awaitable[bool]] | None = None,
) -> list[VoiceSession]:
    """Mark failed the active sessions of workers not live any more; returns them.

    A session is only judged once it has been active for ``ttl_s``, so a worker that took a
    job just before its first heartbeat is not mistaken for a lost one. With ``agent_in_room``
    a session whose room still has an agent is left alone.
    """
    live = {w.worker_id for w in await registry.live()}
    started_before = utcnow() - timedelta(seconds=ttl_s)
    rows = await db.exec(
        select(VoiceSession).where(
            col(VoiceSession.status) == "active",
            col(VoiceSession.worker_id).is_not(None),
            col(VoiceSession.started_at) < started_before,
        )
    )
    lost = []
    for voice_session in rows.all():
        if voice_session.worker_id in live:
            continue
        if agent_in_room is not None:
            try:
                if await agent_in_room(voice_session.room):
                    continue
            except LiveKitError as e:
                logger.warning(
                    "session %s: cannot check its room, judged later: %s", voice_session.id, e
                )
                continue
        lost.append(voice_session)
    for voice_session in lost:
        reason = LOST_REASON.format(worker_id=voice_session.worker_id)
        logger.warning("session %s: %s", voice_session.id, reason)
        await crud.mark_session_failed(db, voice_session, reason)
    return lost


class LostWorkerSweeper:
    """Runs ``sweep_once`` every ``interval_s`` once the control plane has been up ``ttl_s``
    (after a restart with the in-memory registry, live workers need one heartbeat first), and
    the ``nodes`` sweep when given one."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        registry: WorkerRegistry,
        *,
        ttl_s: float,
        interval_s: float,
        agent_in_room: Callable[[str], Awaitable[bool]] | None = None,
        nodes: NodeSweep | None = None,
    ) -> None:
        self._agent_in_room = agent_in_room
        self._nodes = nodes
        self._sessionmaker = sessionmaker
        self._registry = registry
        self._ttl_s = ttl_s
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stimm_lost_worker_sweeper")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(self._interval_s)
            if self._nodes is not None:
                await self._sweep_nodes(self._nodes)
            if time.monotonic() - started < self._ttl_s:
                continue
            try:
                async with self._sessionmaker() as db:
                    await sweep_once(
                        db, self._registry, ttl_s=self._ttl_s, agent_in_room=self._agent_in_room
                    )
            except RegistryUnavailable as e:
                logger.warning("lost-worker sweep skipped: %s", e)
            except Exception:  # keep sweeping; one bad round must not end detection
                logger.exception("lost-worker sweep failed")

    async def _sweep_nodes(self, nodes: NodeSweep) -> None:
        try:
            async with self._sessionmaker() as db:
                await nodes.sweep(db)
        except NodesUnavailable as e:
            logger.warning("lost-node sweep skipped: %s", e)
        except Exception:  # keep sweeping
            logger.exception("lost-node sweep failed")
