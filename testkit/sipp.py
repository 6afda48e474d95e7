"""A real SIP peer for tests: SIPp scenarios, SIPp runs and the SIP messages they logged.

SIPp does the signalling and plays the caller's audio (``play_pcap_audio`` of a pcap written by
``testkit.rtp``). The SDP it offers points the far end's RTP at the small Python receiver
there, so a test can decode (µ-law) and transcribe what the agent said.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal


def sipp_binary() -> str | None:
    return shutil.which("sipp")


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
{_request("ACK", 1, retrans=False)}
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


def _request(
    method: str, cseq: int, *, headers: str = "", body: str = "", retrans: bool = True
) -> str:
    """The caller's ``<send>`` of a request inside the call's dialog.

    Args:
        method: ``ACK``, ``NOTIFY``, ``BYE``, ...
        cseq: Its CSeq number.
        headers: Extra header lines, each ending in a newline.
        body: The body; ``Content-Length`` is SIPp's ``[len]`` with one, 0 without.
        retrans: Retransmit every 500 ms until answered (not for an ACK).
    """
    length = "[len]" if body else "0"
    content = f"{body}\n" if body else ""
    send = '<send retrans="500">' if retrans else "<send>"
    return f"""  {send}
    <![CDATA[
{method} [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{_IN_DIALOG}
CSeq: {cseq} {method}
Contact: <sip:[caller]@[local_ip]:[local_port]>
Max-Forwards: 70
{headers}Content-Length: {length}

{content}    ]]>
  </send>"""


def _notify(cseq: int, sipfrag: str, subscription_state: str) -> str:
    """A NOTIFY of the REFER's implicit subscription (RFC 3515 §2.4.5), and its 200."""
    headers = (
        "Event: refer\n"
        f"Subscription-State: {subscription_state}\n"
        "Content-Type: message/sipfrag;version=2.0\n"
    )
    notify = _request("NOTIFY", cseq, headers=headers, body=f"SIP/2.0 {sipfrag}")
    return f"""{notify}
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
    return f"""{_request("BYE", cseq)}
  <recv response="200" crlf="true"/>"""


def _answer_bye() -> str:
    return f"""  <recv request="BYE"/>
{_respond("200 OK")}"""


def callee_scenario(steps: list[Step], *, hang_up: bool = True) -> str:
    """A UAS: answers one INVITE (SDP to the receiver's port), runs ``steps``, then BYE.

    ``steps`` are ``("pause", seconds)`` or ``("play", pcap path)``. With ``hang_up=False`` the
    callee sends no BYE: it waits for the far end's (an answering machine the agent hangs up).
    """
    answer = _answer(steps, hang_up=hang_up)  # checks the steps first
    # SIPp refuses a scenario that sets a variable it never uses
    remember_from = _REMEMBER_FROM if hang_up else ""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="stimm callee">
  <recv request="INVITE" crlf="true" rrs="true">
{remember_from}
  </recv>
{answer}
</scenario>
"""


@dataclass(frozen=True)
class Answer:
    """A callee that answers, runs ``steps`` and hangs up (or waits for the far end's BYE)."""

    steps: tuple[Step, ...] = ()
    hang_up: bool = True
    ring_s: float = 0.0
    """How long it rings (180) before answering."""


Callee = Answer | Literal["busy", "no-answer"]
"""What a called number does: answer, refuse with 486 Busy Here, or ring until cancelled."""


def callee_router(routes: dict[str, Callee]) -> str:
    """A UAS for many calls at once, each doing what its called number's route says.

    The number is the user part of the INVITE's Request-URI (what livekit-sip dials). ``busy``
    answers 486 Busy Here; ``no-answer`` rings (180) until the far end's CANCEL, then 487; an
    ``Answer`` answers. A number without a route gets 404 Not Found.
    """
    kinds = list(dict.fromkeys(routes.values()))
    tests, branches = [], []
    for i, kind in enumerate(kinds):
        numbers = "|".join(re.escape(n) for n, k in routes.items() if k == kind)
        tests.append(
            f'      <ereg regexp="^INVITE sip:({numbers})@" search_in="msg" assign_to="route{i}"/>'
        )
        if kind == "busy":
            body = _final("486 Busy Here") + '\n  <recv request="ACK"/>'
        elif kind == "no-answer":
            body = _NO_ANSWER
        else:
            body = _answer(list(kind.steps), hang_up=kind.hang_up, ring_s=kind.ring_s)
        branches.append(f'  <label id="route{i}"/>\n{body}\n  <nop next="end"/>')
    if any(isinstance(k, Answer) and k.hang_up for k in kinds):
        tests.append(_FROM_EREG)
    if "no-answer" in kinds:
        tests.append(_REMEMBER_CSEQ)
    jumps = "\n".join(f'  <nop test="route{i}" next="route{i}"/>' for i in range(len(kinds)))
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="stimm callee router">
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
{chr(10).join(tests)}
    </action>
  </recv>
{jumps}
{_final("404 Not Found")}
  <recv request="ACK"/>
  <nop next="end"/>
{chr(10).join(branches)}
  <label id="end"/>
</scenario>
"""


def _final(status: str) -> str:
    """The callee's final (non-2xx) response to the INVITE it received last."""
    return f"""  <send>
    <![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>"""


_REMEMBER_CSEQ = (
    '      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/>'
)

# Ring until the caller gives up: 200 to its CANCEL, then 487 to the INVITE (RFC 3261 §9.2).
_NO_ANSWER = f"""{_final("180 Ringing")}
  <recv request="CANCEL"/>
{_final("200 OK")}
  <send>
    <![CDATA[
SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
CSeq: [$invite_cseq] INVITE
Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>"""


def _answer(steps: list[Step], *, hang_up: bool, ring_s: float = 0.0) -> str:
    """180, ``ring_s`` later 200 with SDP, the caller's ACK, ``steps``, then BYE (or the far
    end's BYE)."""
    lines = []
    for kind, value in steps:
        if kind == "pause":
            lines.append(f'  <pause milliseconds="{int(float(value) * 1000)}"/>')
        elif kind == "play":
            lines.append(f'  <nop><action><exec play_pcap_audio="{value}"/></action></nop>')
        else:
            raise ValueError(f"unknown callee step {(kind, value)!r}")
    actions = "\n".join(lines)
    ending = _CALLEE_BYE if hang_up else _answer_bye()
    ring = f'  <pause milliseconds="{int(ring_s * 1000)}"/>' if ring_s else ""
    return f"""  <send>
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
{ring}
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
{ending}"""


_FROM_EREG = '      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="remote_from"/>'
_REMEMBER_FROM = f"""    <action>
{_FROM_EREG}
    </action>"""

_CALLEE_BYE = """  <send retrans="500">
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

    def dialogs(self) -> list[SipDialog]:
        """Every call SIPp received (one per Call-ID), in the order their INVITEs came."""
        by_id: dict[str, list[SipMessage]] = {}
        for m in self.log():
            if (call_id := m.header("Call-ID")) is not None:
                by_id.setdefault(call_id, []).append(m)
        out = []
        for messages in by_id.values():
            invite = next((m for m in messages if not m.sent and m.method == "INVITE"), None)
            if invite is None:
                continue
            found = _REQUEST_USER.match(invite.first_line)
            out.append(
                SipDialog(
                    number=found.group(1) if found else "",
                    messages=[m for m in messages if m.at >= invite.at],
                )
            )
        return sorted(out, key=lambda d: d.started_at)


_REQUEST_USER = re.compile(r"^\w+ sips?:([^@;> ]+)@")


@dataclass(frozen=True)
class SipDialog:
    """One call as SIPp saw it: the number called and its messages, from the INVITE on."""

    number: str
    messages: list[SipMessage]

    @property
    def started_at(self) -> float:
        return self.messages[0].at

    @property
    def ended_at(self) -> float:
        return self.messages[-1].at

    @property
    def final_status(self) -> int | None:
        """The status of SIPp's final response to the INVITE (200, 486, 487, ...)."""
        for m in self.messages:
            if m.sent and m.is_response and (m.header("CSeq") or "").endswith("INVITE"):
                code = int(m.first_line.split()[1])
                if code >= 200:
                    return code
        return None


def most_at_once(dialogs: list[SipDialog]) -> int:
    """The most calls that were under way at the same moment."""
    edges = sorted(
        [(d.started_at, 1) for d in dialogs] + [(d.ended_at, -1) for d in dialogs],
        key=lambda e: (e[0], e[1]),  # a call that ends as another starts does not overlap it
    )
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


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
    calls: int | None = 1,
) -> SippRun:
    """Start SIPp with ``scenario`` in ``workdir``; logs land there too.

    It ends after ``calls`` calls, or (``None``) when ``timeout_s`` has passed or it is stopped.
    """
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
        *(["-m", str(calls)] if calls is not None else []),
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
