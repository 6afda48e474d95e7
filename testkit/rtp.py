"""G.711 RTP for SIP tests: µ-law, pcap files SIPp plays, and a receiver for the far end's RTP.

The caller's audio is written as pcap (PCMU speech, RFC 2833 keypad events) for SIPp's
``play_pcap_audio``; the receiver keeps every packet with its arrival time so a test can decode
and transcribe what the agent said.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

RATE = 8_000
FRAME = 160  # 20 ms at 8 kHz
PCMU = 0
TELEPHONE_EVENT = 101


# --- G.711 µ-law ------------------------------------------------------------------------------


def ulaw_encode(pcm: NDArray[np.int16]) -> bytes:
    x = pcm.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    x = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(x)).astype(np.int32) - 7
    mantissa = (x >> (exponent + 3)) & 0x0F
    return bytes((~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8))


def ulaw_decode(data: bytes) -> NDArray[np.int16]:
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    x = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -x, x).astype(np.int16)


# --- pcap of RTP ------------------------------------------------------------------------------


def _udp_frame(payload: bytes, src_port: int = 6000, dst_port: int = 6002) -> bytes:
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0,
        64,
        17,
        0,
        socket.inet_aton("127.0.0.1"),
        socket.inet_aton("127.0.0.1"),
    )
    eth = b"\x00" * 12 + b"\x08\x00"
    return eth + ip + udp


def _rtp(pt: int, seq: int, ts: int, payload: bytes, *, marker: bool = False) -> bytes:
    return (
        struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts, 0x5354494D)
        + payload
    )


def write_pcap(path: Path, packets: list[tuple[float, bytes]]) -> None:
    """A pcap (Ethernet/IPv4/UDP) of RTP ``packets`` given as (seconds, rtp bytes)."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, rtp in packets:
            frame = _udp_frame(rtp)
            f.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(frame), len(frame)))
            f.write(frame)


def speech_pcap(
    path: Path,
    pcm8k: NDArray[np.int16],
    lead_silence_s: float = 0.3,
    trail_silence_s: float = 0.8,
) -> float:
    """Write ``pcm8k`` as PCMU RTP, 20 ms a packet; returns its duration in seconds.

    Silence is sent as RTP too, as a phone does: livekit-sip hangs up a call that sends no RTP
    for 15 s, so a caller who listens for a while needs silence around its words.
    """
    pad = np.zeros(int(lead_silence_s * RATE), dtype=np.int16)
    tail = np.zeros(int(trail_silence_s * RATE), dtype=np.int16)
    audio = np.concatenate([pad, pcm8k, tail])
    audio = np.concatenate([audio, np.zeros((-len(audio)) % FRAME, dtype=np.int16)])
    packets = [
        (i * 0.02, _rtp(PCMU, i, i * FRAME, ulaw_encode(audio[i * FRAME : (i + 1) * FRAME])))
        for i in range(len(audio) // FRAME)
    ]
    write_pcap(path, packets)
    return len(audio) / RATE


_DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}


def dtmf_pcap(path: Path, digits: str, *, tone_ms: int = 160, gap_ms: int = 240) -> float:
    """Write RFC 2833 telephone-events for ``digits``; returns the duration in seconds."""
    packets: list[tuple[float, bytes]] = []
    seq, t = 0, 0.0
    for digit in digits:
        event = _DTMF_EVENTS[digit]
        ts = int(t * RATE)
        steps = tone_ms // 20
        for k in range(1, steps + 1):
            payload = struct.pack("!BBH", event, 10, k * FRAME)
            packets.append(
                (t + (k - 1) * 0.02, _rtp(TELEPHONE_EVENT, seq, ts, payload, marker=k == 1))
            )
            seq += 1
        end = struct.pack("!BBH", event, 0x80 | 10, steps * FRAME)
        for r in range(3):  # the end packet is sent three times
            packets.append((t + steps * 0.02 + r * 0.001, _rtp(TELEPHONE_EVENT, seq, ts, end)))
            seq += 1
        t += (tone_ms + gap_ms) / 1000
    write_pcap(path, packets)
    return t


# --- RTP receiver -----------------------------------------------------------------------------


@dataclass
class RtpReceiver:
    """Collects RTP sent to 127.0.0.1:``port`` with arrival times (``time.time``)."""

    port: int = 0
    packets: list[tuple[float, int, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) > 12:
                self.packets.append((time.time(), data[1] & 0x7F, data[12:]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def first_voice_at(self, threshold: float = 300.0, after: float = 0.0) -> float | None:
        """Arrival time of the first PCMU packet louder than ``threshold`` RMS that arrived
        at or after ``after`` (``time.time`` seconds)."""
        for t, pt, payload in self.packets:
            if pt == PCMU and t >= after:
                pcm = ulaw_decode(payload).astype(np.float64)
                if np.sqrt(np.mean(pcm**2)) > threshold:
                    return t
        return None

    def audio(self, start: float = 0.0, end: float = float("inf")) -> NDArray[np.int16]:
        """Decoded PCMU received between ``start`` and ``end`` (``time.time`` seconds)."""
        chunks = [ulaw_decode(p) for t, pt, p in self.packets if pt == PCMU and start <= t < end]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
