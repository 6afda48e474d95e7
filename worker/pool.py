"""The worker's part in the pool: options, and the member that wires its parts together.

``worker.main.create_server`` builds one ``PoolMember`` and hands its ``server_options()`` to the
``AgentServer``; ``attach`` then starts, with the worker, the status server
(``worker.status_server``: ``/live``, ``/ready`` — 503 while draining — and ``/status``) and the
heartbeat loop (``worker.heartbeat``: ``POST /api/worker/heartbeat`` and the Prometheus pool
gauges). Which jobs the worker takes and the load it reports are ``worker.admission``'s.

Drain itself is livekit-agents': on SIGTERM ``cli.run_app`` calls ``AgentServer.drain()``, which
marks the worker full at LiveKit, waits up to ``drain_timeout`` for the running jobs, then exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import tempfile
from dataclasses import dataclass, field
from typing import Any, Literal

from livekit.agents import AgentServer, JobExecutorType, JobRequest

from stimm.schema import WorkerHeartbeat
from worker.admission import Admission
from worker.heartbeat import UNREGISTERED, Heartbeats
from worker.load import LoadOptions, LoadReading
from worker.status_server import StatusServer

logger = logging.getLogger("stimm.worker")


def _executor(value: str) -> Literal["process", "thread"]:
    value = value.strip().lower() or "process"
    if value not in ("process", "thread"):
        raise ValueError(f"STIMM_WORKER_EXECUTOR must be 'process' or 'thread', got {value!r}")
    return "thread" if value == "thread" else "process"


def env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError as e:
        raise ValueError(f"{name} must be a number, got {raw!r}") from e


@dataclass
class PoolOptions:
    """How the worker behaves in the pool.

    Args:
        load: What counts as full (see ``worker.load``).
        drain_timeout_s: How long a SIGTERM'd worker waits for its calls (``STIMM_DRAIN_TIMEOUT``).
        idle_processes: Prewarmed job processes kept ready (``STIMM_WORKER_IDLE_PROCESSES``).
        heartbeat_interval_s: Seconds between heartbeats (``STIMM_WORKER_HEARTBEAT_INTERVAL``).
        status_port: Port of ``/live``, ``/ready``, ``/status`` (``STIMM_WORKER_STATUS_PORT``;
            0 picks a free one, reported in the heartbeat).
        status_host: Address the status server binds (``STIMM_WORKER_STATUS_HOST``).
        advertise_host: Host name put in the heartbeat's URLs (``STIMM_WORKER_ADVERTISE_HOST``).
        executor: ``process`` (a process per job) or ``thread`` (jobs share the worker's
            process) — ``STIMM_WORKER_EXECUTOR``; see ARCHITECTURE.md "Scaling".
    """

    load: LoadOptions = field(default_factory=LoadOptions)
    drain_timeout_s: int = 600
    idle_processes: int = 1
    heartbeat_interval_s: float = 2.0
    status_port: int = 8082
    status_host: str = "0.0.0.0"
    advertise_host: str = field(default_factory=socket.gethostname)
    executor: Literal["process", "thread"] = "process"

    @classmethod
    def from_env(cls) -> PoolOptions:
        return cls(
            load=LoadOptions.from_env(),
            drain_timeout_s=int(env_number("STIMM_DRAIN_TIMEOUT", cls.drain_timeout_s)),
            idle_processes=int(env_number("STIMM_WORKER_IDLE_PROCESSES", cls.idle_processes)),
            heartbeat_interval_s=env_number(
                "STIMM_WORKER_HEARTBEAT_INTERVAL", cls.heartbeat_interval_s
            ),
            status_port=int(env_number("STIMM_WORKER_STATUS_PORT", cls.status_port)),
            status_host=os.environ.get("STIMM_WORKER_STATUS_HOST") or cls.status_host,
            advertise_host=os.environ.get("STIMM_WORKER_ADVERTISE_HOST") or socket.gethostname(),
            executor=_executor(os.environ.get("STIMM_WORKER_EXECUTOR", "process")),
        )


def ensure_multiproc_dir(path: str | None = None) -> str:
    """Make this process and its job processes write Prometheus metrics to one folder.

    The worker's load reads the job processes' turn latencies from there. ``prometheus_client``
    picks in-memory or file-backed values when it is imported; it is switched here so the
    pool gauges created later in this process are in the folder too (and on ``/metrics``).
    """
    path = (
        path
        or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        or tempfile.mkdtemp(prefix="stimm-prometheus-")
    )
    os.makedirs(path, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


class PoolMember:
    """One worker in the pool: admission and load, status server and heartbeats.

    Args:
        options: Pool options.
        multiproc_dir: The Prometheus multiprocess folder (from ``ensure_multiproc_dir``).
        metrics_port: The port of the ``AgentServer``'s ``/metrics``, put in the heartbeat.
    """

    def __init__(
        self,
        options: PoolOptions,
        *,
        multiproc_dir: str | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.options = options
        self.admission = Admission(
            options.load, multiproc_dir=multiproc_dir, on_accept=self._report_now
        )
        self.load = self.admission.load
        self._metrics_port = metrics_port
        self.status = StatusServer(
            options.status_host,
            options.status_port,
            not_ready=self.not_ready,
            status=self.status_json,
        )
        self.heartbeats: Heartbeats | None = None
        self._task: asyncio.Task[None] | None = None

    def server_options(self) -> dict[str, Any]:
        """``AgentServer`` keyword arguments: load, threshold, drain, executor, prewarm."""
        return {
            "load_fnc": self.admission.load_fnc,
            "load_threshold": self.options.load.threshold,
            "drain_timeout": self.options.drain_timeout_s,
            "job_executor_type": (
                JobExecutorType.THREAD
                if self.options.executor == "thread"
                else JobExecutorType.PROCESS
            ),
            "num_idle_processes": self.options.idle_processes,
        }

    async def on_request(self, req: JobRequest) -> None:
        """The ``AgentServer``'s job-request handler (``Admission.on_request``)."""
        await self.admission.on_request(req)

    def sessions(self) -> int:
        return self.admission.sessions()

    def attach(self, server: AgentServer) -> None:
        """Start the status server and heartbeats when ``server`` starts."""
        self.admission.server = server
        server.on("worker_started", self._on_started)

    @property
    def registered(self) -> bool:
        server = self.admission.server
        return server is not None and server.id != UNREGISTERED

    @property
    def draining(self) -> bool:
        return self.admission.draining

    def not_ready(self) -> str | None:
        """Why ``/ready`` answers 503, or ``None``."""
        if self.draining:
            return "draining"
        if not self.registered:
            return "not registered with LiveKit"
        return None

    def status_json(self) -> str:
        """``/status``: the heartbeat the worker would send now."""
        reading = self.load.last or self.load.read(0)
        if not self.registered:
            return json.dumps({"registered": False, "draining": self.draining})
        return self.heartbeat(reading).model_dump_json()

    def heartbeat(self, reading: LoadReading) -> WorkerHeartbeat:
        server = self.admission.server
        assert server is not None
        sessions = self.admission.session_ids()
        host = self.options.advertise_host
        beats = self.heartbeats
        return WorkerHeartbeat(
            worker_id=server.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            load=min(1.0, max(0.0, reading.load)),
            threshold=self.options.load.threshold,
            max_sessions=self.options.load.max_sessions,
            active_jobs=len(server.active_jobs),
            sessions=sessions,
            draining=self.draining,
            p95_latency_s=reading.p95_latency_s,
            cpu_share=reading.cpu_share,
            jobs_accepted=beats.jobs_accepted if beats else 0,
            jobs_failed=beats.jobs_failed if beats else 0,
            status_url=f"http://{host}:{self.status.port}",
            metrics_url=(
                f"http://{host}:{self._metrics_port}/metrics" if self._metrics_port else None
            ),
        )

    def _report_now(self) -> None:
        if self.heartbeats is not None:
            self.heartbeats.wake()

    def _on_started(self) -> None:
        server = self.admission.server
        assert server is not None
        self.heartbeats = Heartbeats(
            server,
            self.load,
            report=self.heartbeat,
            sessions=self.sessions,
            interval_s=self.options.heartbeat_interval_s,
        )
        self.heartbeats.watch_processes()
        self._task = asyncio.create_task(self._run(), name="stimm_pool_member")

    async def _run(self) -> None:
        assert self.heartbeats is not None
        await self.status.start()
        try:
            await self.heartbeats.run()
        finally:
            await self.status.aclose()
