"""The whole platform on loopback: Redis, livekit-server, livekit-sip, the embedded LLM, the
control plane and workers.

Used by ``stimm dev`` and by the end-to-end tests, so both run exactly the same stack.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import make_url

from stimm.egress import ALLOW_ENV as EGRESS_ALLOW_ENV
from stimm.egress import LOOPBACK
from stimm.private_files import private_dir, write_private

from .balancer import Backend, haproxy_binary, haproxy_config
from .binaries import LIVEKIT_SERVER, LIVEKIT_SIP, REPO_ROOT, TRAEFIK, ensure_binary
from .https import (
    Certificate,
    ensure_certificate,
    https_ok,
    node_ip,
    traefik_dynamic_config,
    traefik_static_config,
)
from .process import (
    ManagedProcess,
    StackError,
    free_port,
    free_udp_port,
    http_ok,
    require_free,
    tcp_open,
)
from .sip import SipPorts, free_udp_range, pick_ports, sip_config
from .toxiproxy import Toxiproxy, start_toxiproxy

logger = logging.getLogger("stimm.stack")

DEV_API_KEY = "stimm-dev"
DEV_API_SECRET = "stimm-dev-secret-change-me-in-production-0123456789"

_PORT_SETTINGS = (
    ("control_plane_port", "tcp"),
    ("livekit_port", "tcp"),
    ("livekit_tcp_port", "tcp"),
    ("livekit_udp_port", "udp"),
    ("redis_port", "tcp"),
    ("llm_port", "tcp"),
)
"""Ports a caller may fix, checked free before anything starts (SIP's in ``pick_ports``)."""

_PUBLIC_PORT_SETTINGS = (("https_port", "tcp"), ("turn_port", "udp"))
"""Ports of a stack with a public host, on every interface."""

TURN_RELAY_PORTS = 10


@dataclass
class StackOptions:
    """Ports, credentials and folders of one local stack; 0 means "pick a free port"."""

    run_dir: Path
    database_url: str | None = None
    control_plane_port: int = 0
    livekit_port: int = 0
    livekit_tcp_port: int = 0
    livekit_udp_port: int = 0
    redis_port: int = 0
    workers: int = 1
    nodes: int = 1
    """livekit-server processes sharing one Redis (LiveKit multi-node), node i announcing
    127.0.0.(i+1) for media, on its own ports. Above 1, HAProxy serves LiveKit round robin on
    ``livekit_port`` (the control planes, livekit-sip and callers use it) and worker i
    registers with node i % nodes directly."""
    control_planes: int = 1
    """Control-plane processes on one database and one Redis. Above 1, HAProxy balances them
    round robin on ``control_plane_port``; 0 runs none (Redis and LiveKit only)."""
    api_key: str = DEV_API_KEY
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(36))
    worker_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    bootstrap_api_key: str = field(default_factory=lambda: "stimm_" + secrets.token_urlsafe(32))
    """The control plane's first API key (``STIMM_BOOTSTRAP_API_KEY``); ``stack.api_key``."""
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    """Encrypts stored provider secrets (``STIMM_SECRET_KEY``); keep it to reuse a database."""
    env: dict[str, str] = field(default_factory=dict)
    """More environment for the control plane and the workers, e.g.
    ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
    worker_env: dict[str, str] = field(default_factory=dict)
    dev: bool = False
    log_level: str = "INFO"
    # the embedded offline LLM (``stimm llm``) that the default agent talks to
    llm: bool = False
    llm_port: int = 0
    # telephony: livekit-sip on sip_host (SIP on sip_port, UDP and TCP; RTP on 40 UDP ports
    # from rtp_port_start)
    sip: bool = False
    sip_port: int = 0
    sip_host: str = "127.0.0.1"
    """Where livekit-sip listens and what it announces: loopback, or a LAN address so a
    softphone on another device can call."""
    rtp_port_start: int = 0
    sip_outbound_address: str | None = None
    """host:port that outbound calls are sent to (the control plane's outbound trunk)."""
    public_host: str | None = None
    """Reachable beyond loopback: serve the console, the API and LiveKit's signalling over HTTPS
    for this address or host name (Traefik on ``https_port``, a self-signed certificate in
    ``run_dir/tls``), announce its address for WebRTC media and run TURN over UDP on
    ``turn_port``. None: loopback only, plain HTTP."""
    https_port: int = 0
    turn_port: int = 0
    toxiproxy: bool = False
    """Route the workers' link to the control plane, and the control plane's to PostgreSQL and
    Redis, through toxiproxy proxies (``control-plane``, ``postgres``, ``redis``) that the
    fault tests cut and slow down through ``LocalStack.toxiproxy``."""


class LocalStack:
    """Starts and stops the platform's processes; safe to stop twice."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        o = options
        private_dir(o.run_dir)
        for setting, protocol in _PORT_SETTINGS:
            if port := getattr(o, setting):
                require_free(setting, port, protocol)
        o.control_plane_port = o.control_plane_port or free_port()
        o.livekit_port = o.livekit_port or free_port()
        o.livekit_tcp_port = o.livekit_tcp_port or free_port()
        o.livekit_udp_port = o.livekit_udp_port or free_udp_port()
        o.redis_port = o.redis_port or free_port()
        self.certificate: Certificate | None = None
        self._turn_relay_start = 0
        if o.public_host is not None:
            for setting, protocol in _PUBLIC_PORT_SETTINGS:
                if port := getattr(o, setting):
                    require_free(setting, port, protocol, "0.0.0.0")
            o.https_port = o.https_port or free_port()
            o.turn_port = o.turn_port or free_udp_port()
            self._turn_relay_start = free_udp_range(TURN_RELAY_PORTS)
            self.certificate = ensure_certificate(o.run_dir / "tls", o.public_host)
        if o.llm:
            o.llm_port = o.llm_port or free_port()
        if o.nodes < 1 or o.control_planes < 0:
            raise StackError("a stack needs at least one LiveKit node")
        self.balanced = o.nodes > 1 or o.control_planes > 1
        if self.balanced and (o.public_host is not None or o.toxiproxy):
            raise StackError(
                "several nodes or control planes run on loopback only, without toxiproxy"
            )
        # (signalling, TCP media, UDP media) per node; behind HAProxy every node has its own
        self.node_ports: list[tuple[int, int, int]] = (
            [(free_port(), free_port(), free_udp_port()) for _ in range(o.nodes)]
            if o.nodes > 1
            else [(o.livekit_port, o.livekit_tcp_port, o.livekit_udp_port)]
        )
        self.control_plane_ports: list[int] = (
            [free_port() for _ in range(o.control_planes)]
            if o.control_planes > 1
            else [o.control_plane_port]
        )
        if o.database_url is None:
            o.database_url = f"sqlite+aiosqlite:///{o.run_dir / 'stimm.db'}"
        self.processes: list[ManagedProcess] = []
        self.workers: list[ManagedProcess] = []
        self.livekit_nodes: list[ManagedProcess] = []
        self.control_planes: list[ManagedProcess] = []
        self.sip_ports: SipPorts | None = (
            pick_ports(o.sip_port, o.rtp_port_start, o.sip_host) if o.sip else None
        )
        if self.sip_ports is not None:
            o.sip_port = self.sip_ports.sip
            o.rtp_port_start = self.sip_ports.rtp_start
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.toxiproxy: Toxiproxy | None = None
        self._proxy_ports: dict[str, int] = {}

    # -- addresses ---------------------------------------------------------------------------

    @property
    def livekit_url(self) -> str:
        return f"ws://127.0.0.1:{self.options.livekit_port}"

    @property
    def control_plane_url(self) -> str:
        """The control plane: HAProxy in front of the replicas when there are several."""
        return f"http://127.0.0.1:{self.options.control_plane_port}"

    def node_ip(self, index: int) -> str:
        """The address LiveKit node ``index`` announces for media (one per node on loopback)."""
        if self.options.public_host is not None:
            return node_ip(self.options.public_host)
        return f"127.0.0.{index + 1}"

    def node_url(self, index: int) -> str:
        """LiveKit node ``index`` itself (``livekit_url`` is HAProxy's when there are several)."""
        return f"ws://127.0.0.1:{self.node_ports[index][0]}"

    def replica_url(self, index: int) -> str:
        """Control-plane replica ``index`` itself, not through HAProxy."""
        return f"http://127.0.0.1:{self.control_plane_ports[index]}"

    @property
    def public_url(self) -> str | None:
        """The console, the API and LiveKit over HTTPS, when the stack has a public host."""
        o = self.options
        return f"https://{o.public_host}:{o.https_port}" if o.public_host is not None else None

    @property
    def livekit_public_url(self) -> str:
        """The LiveKit URL browsers are given: ``wss://`` through the proxy with a public
        host."""
        return (
            "wss" + self.public_url.removeprefix("https") if self.public_url else self.livekit_url
        )

    @property
    def worker_control_plane_url(self) -> str:
        """The control plane as the workers reach it: through toxiproxy when the stack runs it."""
        port = self._via_proxy("control-plane", self.options.control_plane_port)
        return f"http://127.0.0.1:{port}"

    @property
    def llm_url(self) -> str | None:
        """The embedded LLM's OpenAI-compatible base URL, when the stack runs it."""
        return f"http://127.0.0.1:{self.options.llm_port}/v1" if self.options.llm else None

    @property
    def sip_address(self) -> str | None:
        """``host:port`` that phones and softphones call, when the stack runs livekit-sip."""
        return f"{self.options.sip_host}:{self.options.sip_port}" if self.options.sip else None

    @property
    def api_key(self) -> str:
        """An API key of the control plane (not LiveKit's: that is ``options.api_key``)."""
        return self.options.bootstrap_api_key

    @property
    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def log_dir(self) -> Path:
        return self.options.run_dir / "logs"

    def _via_proxy(self, name: str, port: int) -> int:
        return self._proxy_ports.get(name, port)

    def _database_url(self) -> str:
        url = make_url(self.options.database_url or "")
        if "postgres" not in self._proxy_ports:
            return self.options.database_url or ""
        proxied = url.set(host="127.0.0.1", port=self._proxy_ports["postgres"])
        return proxied.render_as_string(hide_password=False)

    def process(self, name: str) -> ManagedProcess:
        """The running service called ``name`` (``control-plane``, ``redis``, ``worker-0``…)."""
        return next(p for p in self.processes if p.name == name)

    def service_env(self) -> dict[str, str]:
        """Environment shared by the control plane and the workers."""
        o = self.options
        return {
            **os.environ,
            "LIVEKIT_URL": self.livekit_url,
            "LIVEKIT_API_KEY": o.api_key,
            "LIVEKIT_API_SECRET": o.api_secret,
            "STIMM_WORKER_TOKEN": o.worker_token,
            "STIMM_SECRET_KEY": o.secret_key,
            "STIMM_BOOTSTRAP_API_KEY": o.bootstrap_api_key,
            "STIMM_DATABASE_URL": self._database_url(),
            "STIMM_REDIS_URL": f"redis://127.0.0.1:{self._via_proxy('redis', o.redis_port)}/0",
            "STIMM_CONTROL_PLANE_URL": self.control_plane_url,
            "STIMM_DATA_DIR": str(o.run_dir),
            "STIMM_DEV": "1" if o.dev else "0",
            "LIVEKIT_PUBLIC_URL": self.livekit_public_url,
            "PYTHONUNBUFFERED": "1",
            # the local stack runs its embedded LLM, test fakes and your own servers on this
            # machine: agents may call loopback addresses (never link-local or metadata ones);
            # the control plane lists MCP servers' tools under the same policy
            EGRESS_ALLOW_ENV: os.environ.get(EGRESS_ALLOW_ENV) or LOOPBACK,
            **({"STIMM_LOCAL_LLM_URL": self.llm_url} if self.llm_url else {}),
            **(
                {
                    "STIMM_SIP_ADDRESS": self.sip_address or "",
                    "STIMM_SIP_HEALTH_URL": f"http://127.0.0.1:{self.sip_ports.health}/",
                }
                if self.sip_ports is not None
                else {}
            ),
            **(
                {"STIMM_SIP_OUTBOUND_ADDRESS": o.sip_outbound_address}
                if o.sip_outbound_address
                else {}
            ),
            **o.env,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._start_redis()
            if self.options.toxiproxy:
                self._start_toxiproxy()
            for index in range(self.options.nodes):
                self._start_livekit(index)
            if self.balanced:
                self._start_balancer()
            if self.options.llm:
                self._start_llm()
            if self.sip_ports is not None:
                self._start_sip(self.sip_ports)
            self._start_control_planes()
            if self.certificate is not None:
                self._start_https(self.certificate)
            for _ in range(self.options.workers):
                self.add_worker()
        except BaseException:
            self.stop()
            raise
        if any(p.restart for p in self.processes):
            self._supervisor = threading.Thread(
                target=self._supervise, name="stimm-stack-supervisor", daemon=True
            )
            self._supervisor.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        for proc in reversed(self.processes):
            proc.stop()
        if self.toxiproxy is not None:
            self.toxiproxy.close()

    def _supervise(self) -> None:
        """Bring back a restartable service (the embedded LLM, livekit-sip) that died."""
        while not self._stopping.wait(1.0):
            for proc in self.processes:
                if not proc.restart or proc.alive() or self._stopping.is_set():
                    continue
                logger.warning("%s exited; restarting it", proc.name)
                try:
                    proc.restart_now(abort=self._stopping)
                except StackError as e:
                    logger.error("%s did not come back: %s", proc.name, e)

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _spawn(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        stop_timeout: float = 15.0,
        restart: bool = False,
    ) -> ManagedProcess:
        proc = ManagedProcess(
            name,
            argv,
            log_dir=self.log_dir,
            env=env,
            cwd=REPO_ROOT,
            stop_timeout=stop_timeout,
            restart=restart,
        )
        proc.start()
        self.processes.append(proc)
        return proc

    def _start_redis(self) -> None:
        redis = shutil.which("redis-server")
        if redis is None:
            raise StackError("redis-server is not installed (apt-get install redis-server)")
        data = self.options.run_dir / "redis"
        data.mkdir(exist_ok=True)
        port = self.options.redis_port
        proc = self._spawn(
            "redis",
            [
                redis,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )
        proc.wait_ready(lambda: tcp_open(port), timeout=15)

    def _start_toxiproxy(self) -> None:
        o = self.options
        proc, self.toxiproxy = start_toxiproxy(self.log_dir)
        self.processes.append(proc)
        links = {"control-plane": o.control_plane_port, "redis": o.redis_port}
        db = make_url(o.database_url or "")
        if db.get_backend_name() == "postgresql":
            links["postgres"] = db.port or 5432
        for name, port in links.items():
            self._proxy_ports[name] = self.toxiproxy.create(name, port)

    def livekit_config(self, index: int = 0) -> dict[str, Any]:
        """infra/livekit.yaml with node ``index``'s ports, this run's keys and Redis address."""
        o = self.options
        config: dict[str, Any] = yaml.safe_load((REPO_ROOT / "infra" / "livekit.yaml").read_text())
        port, tcp_port, udp_port = self.node_ports[index]
        config["port"] = port
        config["rtc"].update(tcp_port=tcp_port, udp_port=udp_port)
        config["redis"] = {"address": f"127.0.0.1:{o.redis_port}"}
        config["keys"] = {o.api_key: o.api_secret}
        if o.public_host is None:
            config.pop("turn", None)
        else:
            # TURN over UDP on the public host; the relay reaches livekit-server's own media port
            # on that address, which TURN refuses for private addresses unless allowed
            ip = node_ip(o.public_host)
            config["turn"] = {
                "enabled": True,
                "udp_port": o.turn_port,
                "relay_range_start": self._turn_relay_start,
                "relay_range_end": self._turn_relay_start + TURN_RELAY_PORTS - 1,
                "allow_restricted_peer_cidrs": [f"{ip}/32"],
            }
        return config

    def _start_livekit(self, index: int = 0) -> None:
        binary = ensure_binary(LIVEKIT_SERVER)
        suffix = f"-{index}" if index else ""
        config_path = self.options.run_dir / f"livekit{suffix}.yaml"
        # holds the API secret
        write_private(config_path, yaml.safe_dump(self.livekit_config(index)))
        port = self.node_ports[index][0]
        proc = self._spawn(
            f"livekit-server{suffix}",
            [
                str(binary),
                "--config",
                str(config_path),
                "--bind",
                "127.0.0.1",
                "--node-ip",
                self.node_ip(index),
            ],
            # it waits for rooms to empty on SIGTERM; every service is stopped by then
            stop_timeout=5.0,
        )
        self.livekit_nodes.append(proc)
        proc.wait_ready(lambda: http_ok(f"http://127.0.0.1:{port}/"), timeout=30)

    def _start_balancer(self) -> None:
        o = self.options
        config_path = o.run_dir / "haproxy.cfg"
        config_path.write_text(
            haproxy_config(
                api_port=o.control_plane_port if o.control_planes > 1 else None,
                control_planes=[
                    Backend(f"cp{i}", port) for i, port in enumerate(self.control_plane_ports)
                ],
                livekit_port=o.livekit_port if o.nodes > 1 else None,
                livekit_nodes=[Backend(f"node{i}", p[0]) for i, p in enumerate(self.node_ports)],
            )
        )
        proc = self._spawn("haproxy", [haproxy_binary(), "-db", "-f", str(config_path)])
        ready = o.livekit_port if o.nodes > 1 else o.control_plane_port
        proc.wait_ready(lambda: tcp_open(ready), timeout=15)

    def _start_https(self, certificate: Certificate) -> None:
        """Traefik on every interface: TLS for the console, the API and LiveKit's websocket."""
        o = self.options
        dynamic = o.run_dir / "traefik-routes.yaml"
        dynamic.write_text(
            yaml.safe_dump(
                traefik_dynamic_config(certificate, o.control_plane_port, o.livekit_port)
            )
        )
        static = o.run_dir / "traefik.yaml"
        static.write_text(yaml.safe_dump(traefik_static_config(o.https_port, dynamic)))
        proc = self._spawn(
            "traefik", [str(ensure_binary(TRAEFIK)), f"--configFile={static}"], stop_timeout=5.0
        )
        url = f"https://127.0.0.1:{o.https_port}/health"
        proc.wait_ready(lambda: https_ok(url, certificate), timeout=30)

    def _start_llm(self) -> None:
        port = self.options.llm_port
        proc = self._spawn(
            "local-llm",
            [sys.executable, "-m", "stimm", "llm", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            restart=True,
        )
        proc.wait_ready(lambda: http_ok(f"http://127.0.0.1:{port}/health"), timeout=60)

    def _start_sip(self, ports: SipPorts) -> None:
        binary = ensure_binary(LIVEKIT_SIP)
        o = self.options
        config_path = o.run_dir / "sip.yaml"
        config = sip_config(
            ports=ports,
            livekit_url=self.livekit_url,
            api_key=o.api_key,
            api_secret=o.api_secret,
            redis_port=o.redis_port,
            host=o.sip_host,
        )
        write_private(config_path, yaml.safe_dump(config))
        proc = self._spawn("livekit-sip", [str(binary), "--config", str(config_path)], restart=True)
        proc.wait_ready(lambda: http_ok(f"http://127.0.0.1:{ports.health}/"), timeout=30)

    def _start_control_planes(self) -> None:
        """The first replica migrates the database before the others start (two migrating at
        once would race); with several, HAProxy must then answer ``/health`` too."""
        count = self.options.control_planes
        for index in range(count):
            self._spawn_control_plane(index)
            if index == 0:
                self._wait_control_plane(0)
        for index in range(1, count):
            self._wait_control_plane(index)
        if count > 1:
            url = f"{self.control_plane_url}/health"
            self.process("haproxy").wait_ready(lambda: http_ok(url), timeout=15)

    def _spawn_control_plane(self, index: int) -> None:
        proc = self._spawn(
            f"control-plane-{index}" if index else "control-plane",
            [
                sys.executable,
                "-m",
                "stimm",
                "control-plane",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.control_plane_ports[index]),
            ],
            env=self.service_env(),
        )
        self.control_planes.append(proc)

    def _wait_control_plane(self, index: int) -> None:
        url = f"{self.replica_url(index)}/health"
        self.control_planes[index].wait_ready(lambda: http_ok(url), timeout=60)

    def add_worker(self, env: Mapping[str, str] | None = None) -> ManagedProcess:
        """Start one more worker process and wait until LiveKit has registered it; ``env`` is
        added to its environment (over ``worker_env``)."""
        index = len(self.workers)
        env = {
            **self.service_env(),
            # LiveKit as callers reach it: through HAProxy when there are several nodes (a
            # Kubernetes Service in a deployment), which spreads the workers' connections over
            # the nodes and, when a node dies, reconnects its workers and their calls through a
            # surviving one. LiveKit offers each worker the jobs of rooms on every node.
            "LIVEKIT_URL": self.livekit_url,
            "STIMM_CONTROL_PLANE_URL": self.worker_control_plane_url,
            # several workers (and stacks) share this machine: each binds its status server
            # on a port the system picks (a port picked here first could be taken before the
            # worker binds it) and advertises it in its heartbeats
            "STIMM_WORKER_STATUS_PORT": "0",
            "STIMM_WORKER_STATUS_HOST": "127.0.0.1",
            "STIMM_WORKER_ADVERTISE_HOST": "127.0.0.1",
            # Everything here shares one small machine, so its CPU and the turn latency of
            # offline models say little about this worker: it is full by sessions only and
            # answers slowly rather than refusing the one caller a local stack has.
            # Deployments (infra/) keep the latency and CPU guards on.
            "STIMM_WORKER_CPU_LIMIT": "0",
            "STIMM_WORKER_LATENCY_SLO": "0",
            **self.options.worker_env,
            **(env or {}),
        }
        proc = self._spawn(
            f"worker-{index}",
            [
                sys.executable,
                "-m",
                "stimm",
                "worker",
                "--log-level",
                self.options.log_level,
                # livekit's own health server: on a port the system picks, for the same reason
                "--health-port",
                "0",
            ],
            env=env,
        )
        self.workers.append(proc)
        proc.wait_ready(lambda: "registered worker" in proc.log_tail(400), timeout=90)
        return proc
