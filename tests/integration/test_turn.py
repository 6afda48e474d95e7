"""TURN of a stack with a public host (``stimm dev --public-host``): a caller whose network lets
nothing through but the TURN server (relay-only ICE) still hears the other side.

The public host is this machine's own non-loopback address, as a LAN address would be: WebRTC
never relays through a TURN server on loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from livekit import api, rtc

from stimm.stack import LocalStack, StackOptions
from testkit.audio import rms

pytestmark = pytest.mark.integration

RATE = 48_000
RELAY_ONLY = rtc.RoomOptions(
    rtc_config=rtc.RtcConfiguration(ice_transport_type=rtc.IceTransportType.TRANSPORT_RELAY)
)


def lan_address() -> str:
    """The IPv4 address this machine sends from (no packet leaves: UDP ``connect`` only picks
    the route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.254", 9))
            address = str(s.getsockname()[0])
        except OSError as e:
            pytest.fail(f"this machine has no non-loopback IPv4 route: {e}")
    if ipaddress.ip_address(address).is_loopback:
        pytest.fail("this machine has no non-loopback IPv4 address")
    return address


@pytest.fixture(scope="module")
def public_stack(run_dir: Path) -> Iterator[LocalStack]:
    stack = LocalStack(
        StackOptions(run_dir=run_dir / "public-stack", public_host=lan_address(), workers=0)
    )
    stack.start()
    yield stack
    stack.stop()


def token(stack: LocalStack, identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room="turn-only")
    o = stack.options
    return (
        api.AccessToken(o.api_key, o.api_secret)
        .with_identity(identity)
        .with_grants(grants)
        .to_jwt()
    )


async def test_a_relay_only_caller_hears_the_other_side_through_turn(
    public_stack: LocalStack,
) -> None:
    speaker, listener = rtc.Room(), rtc.Room()
    heard: list[np.ndarray] = []
    enough = asyncio.get_running_loop().create_future()

    async def listen(track: rtc.Track) -> None:
        async for event in rtc.AudioStream.from_track(
            track=track, sample_rate=RATE, num_channels=1
        ):
            heard.append(np.frombuffer(event.frame.data, dtype=np.int16))
            if len(heard) >= 100 and not enough.done():  # one second
                enough.set_result(None)

    tasks: list[asyncio.Task[None]] = []
    listener.on(
        "track_subscribed", lambda track, *_: tasks.append(asyncio.create_task(listen(track)))
    )
    tone = (np.sin(np.arange(RATE // 100) * 2 * np.pi * 440 / RATE) * 8000).astype(np.int16)
    source = rtc.AudioSource(RATE, 1)

    async def play() -> None:
        while not enough.done():
            await source.capture_frame(rtc.AudioFrame(tone.tobytes(), RATE, 1, len(tone)))

    try:
        await listener.connect(
            public_stack.livekit_url, token(public_stack, "listener"), RELAY_ONLY
        )
        await speaker.connect(public_stack.livekit_url, token(public_stack, "speaker"), RELAY_ONLY)
        track = rtc.LocalAudioTrack.create_audio_track("tone", source)
        await speaker.local_participant.publish_track(track)
        tasks.append(asyncio.create_task(play()))
        await asyncio.wait_for(enough, timeout=60)
    finally:
        for task in tasks:
            task.cancel()
        await speaker.disconnect()
        await listener.disconnect()
    assert rms(np.concatenate(heard[-50:])) > 3000  # the tone (RMS 5657), not silence
