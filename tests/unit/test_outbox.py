"""A session's turns while the control plane is down: buffered, in order, posted once it is back,
each stored once even when an answer was lost and the post retried."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from livekit.agents import llm
from livekit.agents.voice.events import ConversationItemAddedEvent

from worker import outbox
from worker.control_plane_client import ControlPlaneClient
from worker.outbox import Outbox
from worker.recorder import SessionRecorder


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "BACKOFF_S", (0.01, 0.05))


class FlakyControlPlane:
    """Refuses connections while ``down``; stores turns by key like the real one; can store a
    turn and then lose the answer (``lose_answers``)."""

    def __init__(self) -> None:
        self.down = True
        self.status_while_down: int | None = None
        self.lose_answers = 0
        self.turns: list[dict[str, Any]] = []
        self.events: list[str] = []
        self.client = ControlPlaneClient(
            "http://control-plane", "token", transport=httpx.MockTransport(self._handle)
        )

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            if self.status_while_down is None:
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(self.status_while_down, json={"detail": "database unreachable"})
        body = json.loads(request.content)
        if request.url.path.endswith("/events"):
            self.events.append(body["status"])
        elif all(t["key"] != body["key"] for t in self.turns):
            self.turns.append(body)
        if self.lose_answers:
            self.lose_answers -= 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return httpx.Response(201, json={})


def said(role: str, text: str) -> ConversationItemAddedEvent:
    return ConversationItemAddedEvent(item=llm.ChatMessage(role=role, content=[text]))  # type: ignore[arg-type]


async def test_turns_of_a_call_with_the_control_plane_down_arrive_once_in_order() -> None:
    cp = FlakyControlPlane()
    recorder = SessionRecorder(cp.client, "session-1")
    started = time.monotonic()
    recorder._on_item(said("assistant", "Hello, how can I help?"))
    await recorder.started(turn_detection="vad")
    recorder._on_item(said("user", "When is the museum open?"))
    recorder._on_item(said("assistant", "Every Sunday afternoon."))
    assert time.monotonic() - started < 0.1  # the call never waits on the control plane
    await asyncio.sleep(0.3)
    assert cp.turns == [] and recorder.outbox.pending == 4

    cp.down, cp.lose_answers = False, 2  # back, but the first two answers get lost
    await recorder.finished(grace_s=5)

    assert [t["text"] for t in cp.turns] == [
        "Hello, how can I help?",
        "When is the museum open?",
        "Every Sunday afternoon.",
    ]
    assert len({t["key"] for t in cp.turns}) == 3
    assert cp.events == ["active", "completed"]


async def test_a_database_outage_503_is_retried_until_it_heals() -> None:
    cp = FlakyControlPlane()
    cp.status_while_down = 503
    box = Outbox(cp.client)
    box.put("/api/worker/sessions/s/turns", json.dumps({"key": "k-1", "text": "hi"}))
    await asyncio.sleep(0.2)
    cp.down = False
    assert await box.flush(5)
    assert [t["text"] for t in cp.turns] == ["hi"]


async def test_session_end_waits_only_the_grace_period() -> None:
    cp = FlakyControlPlane()
    recorder = SessionRecorder(cp.client, "session-1")
    recorder._on_item(said("user", "Hello?"))
    started = time.monotonic()
    await recorder.finished(grace_s=0.5)
    assert 0.4 < time.monotonic() - started < 2.0
    assert cp.turns == []


async def test_a_full_buffer_drops_the_oldest_post() -> None:
    cp = FlakyControlPlane()
    box = Outbox(cp.client, capacity=2)
    for n in (1, 2, 3):
        box.put("/api/worker/sessions/s/turns", json.dumps({"key": f"k-{n}", "text": str(n)}))
    assert box.dropped == 1 and box.pending == 2
    cp.down = False
    assert await box.flush(5)
    assert [t["text"] for t in cp.turns] == ["2", "3"]


async def test_a_refused_post_is_not_retried() -> None:
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if "gone" in request.url.path:
            return httpx.Response(404, json={"detail": "Session gone not found"})
        return httpx.Response(201, json={})

    client = ControlPlaneClient("http://cp", "t", transport=httpx.MockTransport(handle))
    box = Outbox(client)
    box.put("/api/worker/sessions/gone/turns", "{}")
    box.put("/api/worker/sessions/here/turns", "{}")
    assert await box.flush(5)
    assert calls == ["/api/worker/sessions/gone/turns", "/api/worker/sessions/here/turns"]
