"""livekit-sip in the local stack: its config (infra/sip.yaml with this run's values) and ports."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import yaml

from .binaries import REPO_ROOT
from .process import StackError, ephemeral_floor, free_port, free_udp_port, port_free, require_free

RTP_PORTS = 40
"""RTP ports reserved per local stack: two per call, plenty for tests and a laptop."""


@dataclass(frozen=True)
class SipPorts:
    sip: int
    rtp_start: int
    rtp_end: int
    health: int


def free_udp_range(size: int, attempts: int = 50) -> int:
    """The first of ``size`` consecutive UDP ports on loopback that are free right now."""
    for _ in range(attempts):
        start = free_udp_port()
        if start + size > ephemeral_floor():  # the range stays out of it, as single ports do
            continue
        socks: list[socket.socket] = []
        try:
            for port in range(start, start + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return start
    raise StackError(f"no {size} consecutive free UDP ports for RTP")


def pick_ports(sip_port: int = 0, rtp_start: int = 0, host: str = "127.0.0.1") -> SipPorts:
    """Free SIP (UDP and TCP), RTP and health ports on ``host``.

    Ports given are kept and must be free: a busy one raises ``PortInUse`` naming its setting.
    """
    if sip_port:
        require_free("sip_port", sip_port, "udp", host)
        require_free("sip_port", sip_port, "tcp", host)
    else:
        # livekit-sip listens on the same number over UDP and TCP
        for _ in range(50):
            candidate = free_udp_port()
            if port_free(candidate, "tcp", host):
                sip_port = candidate
                break
        else:
            raise StackError("no free port for SIP on both UDP and TCP")
    if rtp_start:
        for port in range(rtp_start, rtp_start + RTP_PORTS):
            require_free("rtp_port_start", port, "udp", host)
    else:
        rtp_start = free_udp_range(RTP_PORTS)
    return SipPorts(
        sip=sip_port, rtp_start=rtp_start, rtp_end=rtp_start + RTP_PORTS - 1, health=free_port()
    )


def sip_config(
    *,
    ports: SipPorts,
    livekit_url: str,
    api_key: str,
    api_secret: str,
    redis_port: int,
    host: str = "127.0.0.1",
) -> dict[str, Any]:
    """infra/sip.yaml with this run's ports, keys and Redis; SIP and RTP on ``host``."""
    config: dict[str, Any] = yaml.safe_load((REPO_ROOT / "infra" / "sip.yaml").read_text())
    config.update(
        api_key=api_key,
        api_secret=api_secret,
        ws_url=livekit_url,
        redis={"address": f"127.0.0.1:{redis_port}"},
        sip_port=ports.sip,
        rtp_port=f"{ports.rtp_start}-{ports.rtp_end}",
        health_port=ports.health,
        # listen and announce on one address (loopback, or a LAN address a softphone on
        # another device reaches): SDP and Contact carry it
        listen_ip=host,
        nat_1_to_1_ip=host,
        use_external_ip=False,
        # the machine is shared with the rest of the stack: never refuse a call for CPU
        max_cpu_utilization=1.0,
    )
    config["logging"] = {"level": "debug", "json": False}
    return config
