"""The node sweep's decisions when a LiveKit node dies, on a real (SQLite) database, with
LiveKit's node table and room placement given by hand: a call that came back on a live node
is moved there and goes on; one that did not is failed with the reason once the grace is over,
and its room closed; sessions on live nodes are left alone."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane import crud
from control_plane.core.db import create_engine, create_sessionmaker
from control_plane.livekit_nodes import SERVING, LiveKitNode, LiveKitNodes, NodeSweep
from control_plane.models import VoiceSession
from stimm.schema import AgentConfig, ProviderSpec

pytestmark = pytest.mark.unit


class Nodes(LiveKitNodes):
    """LiveKit's Redis as the test sets it: the node table and where each room is."""

    def __init__(self) -> None:
        super().__init__("redis://127.0.0.1:1")  # never connected: both reads are replaced
        self.table: dict[str, LiveKitNode] = {}
        self.rooms: dict[str, str] = {}

    def beat(self, node_id: str, silent_for: float = 0) -> None:
        updated_at = int(time.time() - silent_for)
        self.table[node_id] = LiveKitNode(
            node_id, f"10.0.0.{ord(node_id) - 64}", updated_at, SERVING
        )

    async def nodes(self) -> dict[str, LiveKitNode]:
        return dict(self.table)

    async def node_of_rooms(self, rooms: list[str]) -> dict[str, str]:
        return {room: self.rooms[room] for room in rooms if room in self.rooms}


class Rooms:
    """LiveKit's API as the test sets it: the rooms whose caller and agent rejoined."""

    def __init__(self) -> None:
        self.back: set[str] = set()
        self.deleted: list[str] = []

    async def call_in_room(self, room: str, caller: str | None, since: float) -> bool:
        assert since <= time.time()
        return room in self.back

    async def delete_room(self, room: str) -> None:
        self.deleted.append(room)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[AsyncSession]:
    engine = create_engine(f"sqlite:///{tmp_path / 'stimm.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    async with create_sessionmaker(engine)() as session:
        yield session
    await engine.dispose()


async def open_calls(db: AsyncSession, *rooms: str) -> list[VoiceSession]:
    agent = await crud.create_agent(
        db, AgentConfig(name="support", instructions="Help.", llm=[ProviderSpec(provider="local")])
    )
    calls = [
        VoiceSession(agent_id=agent.id, room=room, status="active", participant_identity="caller")
        for room in rooms
    ]
    db.add_all(calls)
    await db.commit()
    return calls


async def test_calls_of_a_dead_node_move_to_the_node_they_came_back_on_or_fail(
    db: AsyncSession,
) -> None:
    nodes, rooms = Nodes(), Rooms()
    sweep = NodeSweep(nodes, rooms, lost_after_s=10, grace_s=20)
    nodes.beat("A")
    nodes.beat("B")
    nodes.rooms = {"moved": "A", "gone": "A", "agent-only": "A", "elsewhere": "B"}
    moved, gone, agent_only, elsewhere = await open_calls(
        db, "moved", "gone", "agent-only", "elsewhere"
    )

    assert await sweep.sweep(db) == []
    assert [c.livekit_node for c in (moved, gone, agent_only, elsewhere)] == ["A", "A", "A", "B"]

    # A has been silent 15 s: lost, but its calls are still within the grace to reconnect
    nodes.beat("A", silent_for=15)
    nodes.rooms.update({"moved": "B", "agent-only": "B"})
    rooms.back = {"moved"}  # in "agent-only" only the agent reconnected
    assert await sweep.sweep(db) == []
    assert moved.livekit_node == "B" and moved.status == "active"
    assert gone.status == agent_only.status == "active"

    # past the grace: the calls not back are failed with why, and their rooms closed
    nodes.beat("A", silent_for=31)
    failed = await sweep.sweep(db)
    assert {c.room for c in failed} == {"gone", "agent-only"}
    for call in failed:
        await db.refresh(call)
        assert call.status == "failed" and call.ended_at is not None
        assert call.failure_reason is not None
        assert re.match(
            r"LiveKit node A \(10\.0\.0\.1\) lost: no stats from it for 3\d s", call.failure_reason
        )
        assert "did not come back on another node within 20 s" in call.failure_reason
    assert sorted(rooms.deleted) == ["agent-only", "gone"]
    for call in (moved, elsewhere):
        await db.refresh(call)
        assert call.status == "active" and call.failure_reason is None


async def test_a_node_gone_from_the_table_gets_the_grace_from_when_it_is_first_seen_gone(
    db: AsyncSession,
) -> None:
    nodes, rooms = Nodes(), Rooms()
    sweep = NodeSweep(nodes, rooms, lost_after_s=5, grace_s=0.3)
    nodes.beat("A")
    nodes.rooms = {"call": "A"}
    (call,) = await open_calls(db, "call")
    await sweep.sweep(db)
    assert call.livekit_node == "A"

    del nodes.table["A"]  # a node that shut down removes its entry
    assert await sweep.sweep(db) == []
    await asyncio.sleep(0.4)
    (failed,) = await sweep.sweep(db)
    assert failed.failure_reason is not None
    assert "it left LiveKit's node table" in failed.failure_reason
    assert rooms.deleted == ["call"]


async def test_without_livekit_api_a_room_placed_on_a_live_node_again_counts_as_the_call_back(
    db: AsyncSession,
) -> None:
    nodes = Nodes()
    sweep = NodeSweep(nodes, lost_after_s=10, grace_s=20)
    nodes.beat("A")
    nodes.beat("B")
    nodes.rooms = {"call": "A"}
    (call,) = await open_calls(db, "call")
    await sweep.sweep(db)
    nodes.beat("A", silent_for=60)
    nodes.rooms["call"] = "B"
    assert await sweep.sweep(db) == []
    assert call.livekit_node == "B" and call.status == "active"
