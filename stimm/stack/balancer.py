"""HAProxy in front of several control planes and LiveKit nodes (``StackOptions.nodes`` /
``control_planes`` above 1): round robin, health-checked, as a Kubernetes Service or a cloud
load balancer spreads them in a deployment.

A request whose connection is refused (its replica just died) is sent to another replica
(``option redispatch`` with ``retries``): it never reached the dead one, so that is safe even
for a POST. A request a replica was answering when it died is lost with it; the client
retries it (``POST /api/sessions`` with the same ``Idempotency-Key`` gets the same session).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from .process import StackError


@dataclass(frozen=True)
class Backend:
    name: str
    port: int
    host: str = "127.0.0.1"


def haproxy_binary() -> str:
    # /usr/sbin is not on every user's PATH
    binary = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if binary is None:
        raise StackError("haproxy is not installed (apt-get install haproxy)")
    return binary


def haproxy_config(
    *,
    api_port: int | None,
    control_planes: list[Backend],
    livekit_port: int | None,
    livekit_nodes: list[Backend],
) -> str:
    """haproxy.cfg: the API on ``api_port`` over ``control_planes`` (checked on ``/health``),
    LiveKit's signalling and API on ``livekit_port`` over ``livekit_nodes`` (websockets kept
    open for a call's length); either part left out when its port is ``None``."""
    lines = [
        "global",
        "  maxconn 4096",
        "defaults",
        "  mode http",
        "  option redispatch",
        "  retries 3",
        "  timeout connect 2s",
        "  timeout client 120s",
        "  timeout server 120s",
        # a caller's or agent's signalling websocket lasts the whole call
        "  timeout tunnel 2h",
        # /health probes the database, Redis, Qdrant and LiveKit: on a busy machine it can take
        # over a second, and a replica marked down for that leaves none to answer (503)
        "  timeout check 5s",
        "  default-server inter 1s fall 3 rise 1",
    ]
    if api_port is not None:
        lines += [
            "frontend api",
            f"  bind 127.0.0.1:{api_port}",
            "  default_backend control_planes",
            "backend control_planes",
            "  balance roundrobin",
            "  option httpchk GET /health",
            "  http-check expect status 200",
        ]
        lines += [f"  server {b.name} {b.host}:{b.port} check" for b in control_planes]
    if livekit_port is not None:
        lines += [
            "frontend livekit",
            f"  bind 127.0.0.1:{livekit_port}",
            "  default_backend livekit_nodes",
            "backend livekit_nodes",
            # connections are websockets that last a call or a worker's life: each new one
            # goes to the node holding fewest, so two workers register with two nodes
            "  balance leastconn",
            "  option httpchk GET /",
        ]
        lines += [f"  server {b.name} {b.host}:{b.port} check" for b in livekit_nodes]
    return "\n".join(lines) + "\n"
