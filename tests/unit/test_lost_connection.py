"""A call whose room connection LiveKit dropped (its node died) is recorded failed with the
reason, not completed; a call the job or the control plane ended normally stays completed."""

from __future__ import annotations

import json

import httpx
import pytest
from livekit import rtc

from worker.control_plane_client import ControlPlaneClient
from worker.recorder import SessionRecorder

pytestmark = pytest.mark.unit


async def outcome_after(reason: rtc.DisconnectReason.ValueType) -> dict[str, object]:
    events: list[dict[str, object]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        events.append(json.loads(request.content))
        return httpx.Response(201, json={})

    client = ControlPlaneClient("http://cp", "token", transport=httpx.MockTransport(handle))
    recorder = SessionRecorder(client, "session-1")
    room = rtc.Room()
    recorder.attach_room(room)
    room.emit("disconnected", reason)
    await recorder.finished(grace_s=5)
    assert len(events) == 1
    return events[0]


@pytest.mark.parametrize(
    "reason", [rtc.DisconnectReason.SIGNAL_CLOSE, rtc.DisconnectReason.CONNECTION_TIMEOUT]
)
async def test_a_dropped_room_fails_the_session(reason: rtc.DisconnectReason.ValueType) -> None:
    event = await outcome_after(reason)
    assert event["status"] == "failed"
    assert event["reason"] == f"LiveKit connection lost ({rtc.DisconnectReason.Name(reason)})"


@pytest.mark.parametrize(
    "reason", [rtc.DisconnectReason.CLIENT_INITIATED, rtc.DisconnectReason.ROOM_DELETED]
)
async def test_a_room_left_or_closed_completes_it(reason: rtc.DisconnectReason.ValueType) -> None:
    assert (await outcome_after(reason))["status"] == "completed"
