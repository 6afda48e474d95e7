"""LiveKit's nodes, and the node each room lives on, as livekit-server keeps them in the Redis
every node shares: the ``nodes`` hash (node id → its ``livekit.Node`` protobuf, stats refreshed
every 2 s) and ``room_node_map`` (room → node id), written by livekit-server's ``RedisRouter``.

A room's media lives on one node. When that node dies, LiveKit's clients (the browser SDK,
livekit-rtc, the agents' rooms) reconnect through the load balancer; livekit-server treats a
node whose stats are 5 s old as unavailable and re-creates the room on a live node, so a caller
and its agent that both reconnect carry on their call there after a few seconds of silence.
``NodeSweep`` records each open session's node (``session.livekit_node``) when it first sees the
room placed; once that node has been silent for ``NODE_LOST_AFTER_S`` (or left the node table)
a session whose room is back on a live node with its caller and an agent in it is moved there,
and one still not back ``RECONNECT_GRACE_S`` later is marked failed with the reason. The worker
reports its own side (its room connection lost for good) as well; whichever comes first ends
the session.

The ``Node`` message is internal to LiveKit (``livekit_internal.proto``, not in the Python
``livekit-protocol`` package): the few fields read here are declared below with their field
numbers, and protobuf skips the others.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from redis.exceptions import RedisError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane import crud
from control_plane.errors import ControlPlaneError
from control_plane.models import VoiceSession
from control_plane.redis_clients import redis_client

logger = logging.getLogger("stimm.control_plane")

NODES_KEY = "nodes"
ROOM_NODE_KEY = "room_node_map"
NODE_LOST_AFTER_S = 10
"""livekit-server refreshes a node's stats every 2 s and stops placing rooms on it after 5 s."""
STATS_PERIOD_S = 2
"""livekit-server writes a node's stats (whole seconds) this often: a node last heard of at
``updated_at`` died before ``updated_at`` + 3 s, and so did its participants' sessions."""
RECONNECT_GRACE_S = 20
"""How long after its node is lost a call has to come back on a live node. Clients start
reconnecting at once; the room can only be re-created once LiveKit stops routing it to the
dead node (5 s), and the SDKs back off between attempts."""
LOST_REASON = (
    "LiveKit node {node} ({ip}) lost: {why}; the call did not come back on another node "
    "within {grace:g} s"
)


class Rooms(Protocol):
    """What the sweep asks of LiveKit's API (``control_plane.livekit.LiveKit``)."""

    async def call_in_room(self, room: str, caller: str | None, since: float) -> bool:
        """Whether ``room`` has its caller (a participant identity, or any participant but an
        agent when ``None``) and an agent, both joined since ``since`` (Unix seconds)."""

    async def delete_room(self, room: str) -> None:
        """Close the room: whoever is in it leaves."""


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
        self._redis = redis_client(redis_url)

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


class NodeSweep:
    """Follows the open sessions' calls across LiveKit node failures: each ``sweep`` records
    where new rooms were placed, moves the calls that came back on another node, and fails the
    ones that did not within ``grace_s``.

    ``rooms`` (LiveKit's API) tells a call that is back from a room re-created without it,
    and closes the room of a call that failed (the agent that reconnected there alone leaves,
    which ends its job); without it a room placed on a live node again counts as the call
    back.
    """

    def __init__(
        self,
        nodes: LiveKitNodes,
        rooms: Rooms | None = None,
        *,
        lost_after_s: float = NODE_LOST_AFTER_S,
        grace_s: float = RECONNECT_GRACE_S,
    ) -> None:
        self.nodes = nodes
        self._rooms = rooms
        self._lost_after_s = lost_after_s
        self._grace_s = grace_s
        self._missing_since: dict[str, float] = {}
        """Nodes gone from the table (a clean shutdown removes its entry): when first seen so."""

    async def sweep(self, db: AsyncSession) -> list[VoiceSession]:
        """One round; returns the sessions marked failed."""
        rows = (
            await db.exec(
                select(VoiceSession).where(col(VoiceSession.status).in_(("created", "active")))
            )
        ).all()
        if not rows:
            return []
        unplaced = [s for s in rows if s.livekit_node is None]
        placed = await self.nodes.node_of_rooms([s.room for s in unplaced])
        for voice_session in unplaced:
            if node_id := placed.get(voice_session.room):
                voice_session.livekit_node = node_id
                db.add(voice_session)
        if placed:
            await db.commit()
        if all(s.livekit_node is None for s in rows):
            return []
        table = await self.nodes.nodes()
        now = time.time()
        self._missing_since = {n: t for n, t in self._missing_since.items() if n not in table}
        on_lost = []
        for voice_session in rows:
            if voice_session.livekit_node is None:
                continue
            if (lost := self._lost(table, voice_session.livekit_node, now)) is not None:
                on_lost.append((voice_session, *lost))
        if not on_lost:
            return []
        now_on = await self.nodes.node_of_rooms([s.room for s, _, _ in on_lost])
        failed = []
        for voice_session, down_for, why in on_lost:
            old = voice_session.livekit_node or ""
            new = now_on.get(voice_session.room)
            if new and new != old and self._lost(table, new, now) is None:
                if await self._back(voice_session, since=now - down_for + STATS_PERIOD_S + 1):
                    logger.warning(
                        "session %s: call moved from lost LiveKit node %s to node %s",
                        voice_session.id,
                        old,
                        new,
                    )
                    voice_session.livekit_node = new
                    db.add(voice_session)
                    await db.commit()
                    continue
            if down_for < self._lost_after_s + self._grace_s:
                continue  # still reconnecting
            node = table.get(old)
            reason = LOST_REASON.format(
                node=old, ip=node.ip if node else "?", why=why, grace=self._grace_s
            )
            logger.warning("session %s: %s", voice_session.id, reason)
            await crud.mark_session_failed(db, voice_session, reason)
            failed.append(voice_session)
            if self._rooms is not None:
                try:
                    await self._rooms.delete_room(voice_session.room)
                except ControlPlaneError as e:  # LiveKit's empty timeout closes it later
                    logger.warning("session %s: room not closed: %s", voice_session.id, e)
        return failed

    def _lost(
        self, table: dict[str, LiveKitNode], node_id: str, now: float
    ) -> tuple[float, str] | None:
        """For a lost node: for how long (seconds since its last stats) and why."""
        node = table.get(node_id)
        if node is None:
            since = self._missing_since.setdefault(node_id, now)
            # counted as if it had just gone silent: the grace starts when it is first seen gone
            return now - since + self._lost_after_s, "it left LiveKit's node table"
        silent = node.silent_for(now)
        if silent > self._lost_after_s:
            return silent, f"no stats from it for {silent:.0f} s"
        return None

    async def _back(self, voice_session: VoiceSession, *, since: float) -> bool:
        """Whether the call is in its re-created room: its caller and an agent, both joined
        since its node died (LiveKit keeps listing the participants that were on the dead
        node, with their old join time)."""
        if self._rooms is None:
            return True
        try:
            return await self._rooms.call_in_room(
                voice_session.room, voice_session.participant_identity, since
            )
        except ControlPlaneError as e:
            logger.warning(
                "session %s: cannot check its room, judged later: %s", voice_session.id, e
            )
            return False
