"""A real SIP peer for tests: SIPp scenarios, G.711 RTP as pcap files, and an RTP receiver.

SIPp does the signalling and plays the caller's audio (``play_pcap_audio`` of a pcap this module
writes: PCMU speech, RFC 2833 keypad events). The SDP it offers points the far end's RTP at a
small Python receiver, which keeps every packet with its arrival time so a test can decode
(µ-law) and transcribe what the agent said.
"""

from __future__ import annotations

import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

RATE = 8_000
FRAME = 160  # 20 ms at 8 kHz
PCMU = 0
TELEPHONE_EVENT = 101


def sipp_binary() -> str | None:
    return shutil.which("sipp")


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


def speech_pcap(path: Path, pcm8k: NDArray[np.int16], lead_silence_s: float = 0.3) -> float:
    """Write ``pcm8k`` as PCMU RTP, 20 ms a packet; returns its duration in seconds."""
    pad = np.zeros(int(lead_silence_s * RATE), dtype=np.int16)
    tail = np.zeros(int(0.8 * RATE), dtype=np.int16)
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


# --- scenarios --------------------------------------------------------------------------------

_SDP = """v=0
o=sipp 1 1 IN IP4 127.0.0.1
s=stimm-test
c=IN IP4 127.0.0.1
t=0 0
m=audio [rtp_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendrecv
"""


Step = tuple[str, float | str]
"""A caller step: ``("pause", seconds)``, ``("play", pcap path)`` or ``("refer", answer)``."""

REFER_ANSWERS = ("accept", "decline", "busy")
"""How the caller answers a REFER (see ``caller_scenario``)."""

# The caller's side of the dialog, for the requests it sends after the INVITE.
_IN_DIALOG = """From: <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]"""


def caller_scenario(steps: list[Step], *, hang_up: bool = True) -> str:
    """A UAC: INVITE (SDP to the receiver's port), ACK, then ``steps``, then BYE.

    ``steps`` are ``("pause", seconds)``, ``("play", pcap path)`` or ``("refer", answer)``:
    wait for the far end's REFER and answer it as a phone does (RFC 3515):

    - ``accept``: 202 Accepted, a NOTIFY with the sipfrag ``SIP/2.0 100 Trying``, then one
      with ``SIP/2.0 200 OK`` ending the subscription (the transfer target answered);
    - ``busy``: the same, but the final NOTIFY carries ``SIP/2.0 486 Busy Here``;
    - ``decline``: 603 Decline to the REFER itself.

    With ``hang_up=False`` the caller sends no BYE: it waits for the far end's and answers it.
    """
    actions = []
    cseq = 1  # the INVITE's; each request the caller sends later takes the next one
    for kind, value in steps:
        if kind == "pause":
            actions.append(f'  <pause milliseconds="{int(float(value) * 1000)}"/>')
        elif kind == "play":
            actions.append(f'  <nop><action><exec play_pcap_audio="{value}"/></action></nop>')
        elif kind == "refer" and value in REFER_ANSWERS:
            xml, cseq = _answer_refer(str(value), cseq)
            actions.append(xml)
        else:
            raise ValueError(f"unknown caller step {(kind, value)!r}")
    body = "\n".join(actions)
    ending = _send_bye(cseq + 1) if hang_up else _answer_bye()
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="stimm caller">
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:[caller]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{_SDP}
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send>
    <![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{_IN_DIALOG}
CSeq: 1 ACK
Contact: <sip:[caller]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
{body}
{ending}
</scenario>
"""


def _respond(status: str) -> str:
    """The caller's response to the request it just received."""
    return f"""  <send>
    <![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[caller]@[local_ip]:[local_port]>
Content-Length: 0

    ]]>
  </send>"""


def _notify(cseq: int, sipfrag: str, subscription_state: str) -> str:
    """A NOTIFY of the REFER's implicit subscription (RFC 3515 §2.4.5), and its 200."""
    return f"""  <send retrans="500">
    <![CDATA[
NOTIFY [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{_IN_DIALOG}
CSeq: {cseq} NOTIFY
Contact: <sip:[caller]@[local_ip]:[local_port]>
Max-Forwards: 70
Event: refer
Subscription-State: {subscription_state}
Content-Type: message/sipfrag;version=2.0
Content-Length: [len]

SIP/2.0 {sipfrag}
    ]]>
  </send>
  <recv response="200"/>"""


def _answer_refer(answer: str, cseq: int) -> tuple[str, int]:
    """Scenario XML answering one REFER, and the last CSeq the caller used."""
    parts = ['  <recv request="REFER"/>']
    if answer == "decline":
        parts.append(_respond("603 Decline"))
        return "\n".join(parts), cseq
    final = "200 OK" if answer == "accept" else "486 Busy Here"
    parts += [
        _respond("202 Accepted"),
        _notify(cseq + 1, "100 Trying", "active;expires=60"),
        '  <pause milliseconds="500"/>',  # the transfer target rings
        _notify(cseq + 2, final, "terminated;reason=noresource"),
    ]
    return "\n".join(parts), cseq + 2


def _send_bye(cseq: int) -> str:
    return f"""  <send retrans="500">
    <![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{_IN_DIALOG}
CSeq: {cseq} BYE
Contact: <sip:[caller]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>"""


def _answer_bye() -> str:
    return f"""  <recv request="BYE"/>
{_respond("200 OK")}"""


def callee_scenario(steps: list[tuple[str, float]]) -> str:
    """A UAS: answers one INVITE (SDP to the receiver's port), runs ``steps``, then BYE."""
    actions = "\n".join(
        f'  <pause milliseconds="{int(float(v) * 1000)}"/>' for k, v in steps if k == "pause"
    )
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="stimm callee">
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="remote_from"/>
    </action>
  </recv>
  <send>
    <![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

{_SDP}
    ]]>
  </send>
  <recv request="ACK" rtd="true" crlf="true"/>
{actions}
  <send retrans="500">
    <![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[service]@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To: [$remote_from]
[last_Call-ID:]
CSeq: 2 BYE
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


@dataclass
class SippRun:
    proc: subprocess.Popen[bytes]
    workdir: Path

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def messages(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.workdir.glob("*messages.log"))

    def log(self) -> list[SipMessage]:
        """Every SIP message SIPp sent or received, in order (from its ``-trace_msg`` log)."""
        out: list[SipMessage] = []
        stamp: float | None = None
        sent: bool | None = None
        lines: list[str] = []

        def close_entry() -> None:
            text = "\n".join(lines).strip()
            if stamp is not None and sent is not None and text:
                out.append(SipMessage(at=stamp, sent=sent, text=text))

        for line in self.messages().splitlines():
            if line.startswith("-----") and line.rstrip()[-1:].isdigit():
                close_entry()
                when = line.strip("- ").strip()
                stamp = datetime.strptime(when, "%Y-%m-%d %H:%M:%S.%f").timestamp()
                sent, lines = None, []
            elif sent is None and (direction := _TRACE_ENTRY.match(line)):
                sent = direction.group(1) == "sent"
            elif sent is not None:
                lines.append(line)
        close_entry()
        return out

    def timeline(self) -> list[tuple[float, str]]:
        """(wall-clock time, first line) of every SIP message SIPp sent or received."""
        return [(m.at, m.first_line) for m in self.log()]

    def responses(self) -> list[int]:
        """Status codes of the SIP responses SIPp received or sent, in order."""
        return [int(m.first_line.split()[1]) for m in self.log() if m.is_response]

    def received(self, method: str) -> list[SipMessage]:
        """The ``method`` requests (``REFER``, ``BYE``, ...) SIPp received, in order."""
        return [m for m in self.log() if not m.sent and m.method == method]


_TRACE_ENTRY = re.compile(r"^(?:UDP|TCP|TLS|SCTP) message (sent|received)\b")


@dataclass(frozen=True)
class SipMessage:
    """One SIP message in SIPp's log: when (``time.time`` seconds), which way, and its text."""

    at: float
    sent: bool
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def is_response(self) -> bool:
        return self.first_line.startswith("SIP/2.0 ")

    @property
    def method(self) -> str | None:
        return None if self.is_response else self.first_line.split(" ", 1)[0]

    def header(self, name: str) -> str | None:
        """The first ``name`` header's value (case-insensitive name), or None."""
        for line in self.text.splitlines()[1:]:
            if not line.strip():
                break  # the body starts
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    @property
    def body(self) -> str:
        _, _, body = self.text.replace("\r\n", "\n").partition("\n\n")
        return body.strip()


def run_sipp(
    workdir: Path,
    scenario: str,
    *,
    remote: str | None,
    rtp_port: int,
    service: str = "",
    caller: str = "+15550999",
    local_port: int = 0,
    media_port: int = 0,
    timeout_s: float = 60.0,
) -> SippRun:
    """Start SIPp (one call) with ``scenario`` in ``workdir``; logs land there too."""
    binary = sipp_binary()
    if binary is None:
        raise RuntimeError("sipp is not installed (apt-get install sip-tester)")
    workdir.mkdir(parents=True, exist_ok=True)
    if not media_port:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            media_port = s.getsockname()[1]
    xml = workdir / "scenario.xml"
    xml.write_text(scenario)
    argv = [
        binary,
        *([remote] if remote else []),
        "-sf",
        str(xml),
        "-m",
        "1",
        "-i",
        "127.0.0.1",
        "-p",
        str(local_port),
        "-mp",
        str(media_port),
        "-key",
        "rtp_port",
        str(rtp_port),
        "-key",
        "caller",
        caller,
        "-timeout",
        f"{int(timeout_s)}s",
        "-timeout_error",
        "-trace_msg",
        "-trace_err",
        "-nostdin",
    ]
    if service:
        argv += ["-s", service]
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        stdout=(workdir / "sipp.out").open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    return SippRun(proc=proc, workdir=workdir)
