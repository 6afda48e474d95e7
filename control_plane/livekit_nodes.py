"""LiveKit's nodes, and the node each room lives on, as livekit-server keeps them in the Redis
every node shares: the ``nodes`` hash (node id → its ``livekit.Node`` protobuf, stats refreshed
every 2 s) and ``room_node_map`` (room → node id), written by livekit-server's ``RedisRouter``.

A room's media lives on one node for the room's life, so a node that dies takes its calls with
it. livekit-server treats a node whose stats are 5 s old as unavailable and places no new room
there; ``sweep_lost_nodes`` records each open session's node (``session.livekit_node``) when it
first sees the room placed, and marks failed, with the reason, the sessions whose node has been
silent for ``NODE_LOST_AFTER_S`` or is gone from the hash. The node is recorded rather than read
again because clients that reconnect after their node died make LiveKit re-create the room on a
surviving node: the call was still cut (its media and state lived on the dead node). The worker
reports its own side (the room connection lost) as well; whichever comes first ends the
session.

The ``Node`` message is internal to LiveKit (``livekit_internal.proto``, not in the Python
``livekit-protocol`` package): the few fields read here are declared below with their field
numbers, and protobuf skips the others.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane import crud
from control_plane.errors import ControlPlaneError
from control_plane.models import VoiceSession

logger = logging.getLogger("stimm.control_plane")

NODES_KEY = "nodes"
ROOM_NODE_KEY = "room_node_map"
NODE_LOST_AFTER_S = 10
"""livekit-server refreshes a node's stats every 2 s and stops placing rooms on it after 5 s."""
REDIS_TIMEOUT_S = 1.0
LOST_REASON = "LiveKit node {node} ({ip}) lost: {why}; the call's media lived on it"


class NodesUnavailable(ControlPlaneError):
    """LiveKit's Redis cannot be read."""

    retryable = True


def _node_message() -> Any:
    """A message class for the fields of ``livekit.Node`` read here (same field numbers)."""
    proto = descriptor_pb2.FileDescriptorProto(name="stimm_livekit_node.proto", package="stimm")
    stats = proto.message_type.add(name="NodeStats")
    stats.field.add(name="updated_at", number=2, type=3, label=1)  # int64
    node = proto.message_type.add(name="Node")
    node.field.add(name="id", number=1, type=9, label=1)  # string
    node.field.add(name="ip", number=2, type=9, label=1)
    node.field.add(name="stats", number=4, type=11, label=1, type_name=".stimm.NodeStats")
    node.field.add(name="state", number=6, type=5, label=1)  # enum NodeState, read as int32
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("stimm.Node"))


_Node = _node_message()
SERVING = 1
"""``livekit.NodeState.SERVING``; a draining node is ``SHUTTING_DOWN`` (2)."""


@dataclass(frozen=True)
class LiveKitNode:
    id: str
    ip: str
    updated_at: int
    """Unix seconds of its last stats."""
    state: int

    def silent_for(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.updated_at


def parse_node(raw: bytes) -> LiveKitNode:
    message = _Node.FromString(raw)
    return LiveKitNode(
        id=message.id, ip=message.ip, updated_at=message.stats.updated_at, state=message.state
    )


class LiveKitNodes:
    """Reads LiveKit's node table and room placement from its Redis."""

    def __init__(self, redis_url: str) -> None:
        self._redis = Redis.from_url(
            redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )

    async def nodes(self) -> dict[str, LiveKitNode]:
        """Every node in LiveKit's table, live or not, by id."""
        try:
            raw = await self._redis.hgetall(NODES_KEY)
        except RedisError as e:
            raise NodesUnavailable(f"LiveKit's Redis unavailable: {e}") from e
        found = {}
        for node_id, value in raw.items():
            try:
                node = parse_node(value if isinstance(value, bytes) else value.encode())
            except DecodeError:
                logger.warning("unreadable LiveKit node entry %r; ignored", node_id)
                continue
            found[node.id] = node
        return found

    async def node_of_rooms(self, rooms: list[str]) -> dict[str, str]:
        """The node id of each room LiveKit has placed (a closed room has none)."""
        if not rooms:
            return {}
        try:
            ids = await self._redis.hmget(ROOM_NODE_KEY, rooms)
        except RedisError as e:
            raise NodesUnavailable(f"LiveKit's Redis unavailable: {e}") from e
        return {
            room: node.decode() if isinstance(node, bytes) else node
            for room, node in zip(rooms, ids, strict=True)
            if node
        }

    async def aclose(self) -> None:
        await self._redis.aclose()


async def sweep_lost_nodes(
    db: AsyncSession, nodes: LiveKitNodes, *, lost_after_s: float = NODE_LOST_AFTER_S
) -> list[VoiceSession]:
    """Mark failed the open sessions whose room lives on a lost LiveKit node; returns them."""
    rows = (
        await db.exec(
            select(VoiceSession).where(col(VoiceSession.status).in_(("created", "active")))
        )
    ).all()
    if not rows:
        return []
    unplaced = [s for s in rows if s.livekit_node is None]
    placed = await nodes.node_of_rooms([s.room for s in unplaced])
    for voice_session in unplaced:
        if node_id := placed.get(voice_session.room):
            voice_session.livekit_node = node_id
            db.add(voice_session)
    if placed:
        await db.commit()
    if all(s.livekit_node is None for s in rows):
        return []
    table = await nodes.nodes()
    now = time.time()
    lost = []
    for voice_session in rows:
        node_id = voice_session.livekit_node
        if node_id is None:
            continue
        node = table.get(node_id)
        if node is None:
            why, ip = "it left LiveKit's node table", "?"
        elif node.silent_for(now) > lost_after_s:
            why, ip = f"no stats from it for {node.silent_for(now):.0f} s", node.ip
        else:
            continue
        reason = LOST_REASON.format(node=node_id, ip=ip, why=why)
        logger.warning("session %s: %s", voice_session.id, reason)
        await crud.mark_session_failed(db, voice_session, reason)
        lost.append(voice_session)
    return lost
