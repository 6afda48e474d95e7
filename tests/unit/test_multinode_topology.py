"""The local multi-node topology as configured, before anything starts: each LiveKit node its
own loopback address and ports on the one Redis, and a HAProxy configuration that HAProxy
itself accepts, balancing the control planes and the nodes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stimm.stack import LocalStack, StackOptions
from stimm.stack.balancer import Backend, haproxy_binary, haproxy_config

pytestmark = pytest.mark.unit


def test_each_node_announces_its_own_address_and_ports_on_one_redis(tmp_path: Path) -> None:
    stack = LocalStack(StackOptions(run_dir=tmp_path, nodes=2, control_planes=2))
    configs = [stack.livekit_config(i) for i in range(2)]
    assert [stack.node_ip(i) for i in range(2)] == ["127.0.0.1", "127.0.0.2"]
    ports = [(c["port"], c["rtc"]["tcp_port"], c["rtc"]["udp_port"]) for c in configs]
    assert len(set(ports)) == 2 and all(p != stack.options.livekit_port for p, _, _ in ports)
    assert configs[0]["redis"] == configs[1]["redis"]
    # clients use HAProxy; each replica and node is also reachable by itself
    assert stack.livekit_url != stack.node_url(0) != stack.node_url(1)
    assert stack.control_plane_url not in (stack.replica_url(0), stack.replica_url(1))


def test_one_node_and_one_control_plane_need_no_balancer(tmp_path: Path) -> None:
    stack = LocalStack(StackOptions(run_dir=tmp_path))
    assert not stack.balanced
    assert stack.node_url(0) == stack.livekit_url
    assert stack.replica_url(0) == stack.control_plane_url


def test_haproxy_accepts_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        haproxy_config(
            api_port=18000,
            control_planes=[Backend("cp0", 18001), Backend("cp1", 18002)],
            livekit_port=17880,
            livekit_nodes=[Backend("node0", 17881), Backend("node1", 17882)],
        )
    )
    checked = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
