"""The worker's part in the pool: load, drain, readiness, pool metrics and heartbeats.

``worker.main.create_server`` builds one ``PoolMember`` and hands its ``server_options()`` to the
``AgentServer``; ``attach`` then starts, with the worker, a small status server (``/live``,
``/ready`` — 503 while draining — and ``/status``) and a heartbeat loop that reports the worker
to the control plane (``POST /api/worker/heartbeat``) and updates the Prometheus gauges.

Drain itself is livekit-agents': on SIGTERM ``cli.run_app`` calls ``AgentServer.drain()``, which
marks the worker full at LiveKit, waits up to ``drain_timeout`` for the running jobs, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from aiohttp import web
from livekit.agents import AgentServer, JobExecutorType, JobRequest
from pydantic import ValidationError

from stimm.schema import JobMetadata, WorkerHeartbeat
from worker.load import CpuMeter, LoadOptions, LoadReading, WorkerLoad

logger = logging.getLogger("stimm.worker")

HEARTBEAT_TIMEOUT_S = 5.0
ACCEPTED_TTL_S = 120.0
"""How long an accepted job that never started running is still reported."""

UNREGISTERED = "unregistered"
"""``AgentServer.id`` until LiveKit has registered the worker."""


def _session_of(metadata: str | None) -> str | None:
    try:
        return JobMetadata.model_validate_json(metadata or "{}").session_id
    except ValidationError:
        return None


def _executor(value: str) -> Literal["process", "thread"]:
    value = value.strip().lower() or "process"
    if value not in ("process", "thread"):
        raise ValueError(f"STIMM_WORKER_EXECUTOR must be 'process' or 'thread', got {value!r}")
    return "thread" if value == "thread" else "process"


def _env_number(name: str, default: float) -> float:
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
            drain_timeout_s=int(_env_number("STIMM_DRAIN_TIMEOUT", cls.drain_timeout_s)),
            idle_processes=int(_env_number("STIMM_WORKER_IDLE_PROCESSES", cls.idle_processes)),
            heartbeat_interval_s=_env_number(
                "STIMM_WORKER_HEARTBEAT_INTERVAL", cls.heartbeat_interval_s
            ),
            status_port=int(_env_number("STIMM_WORKER_STATUS_PORT", cls.status_port)),
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


class PoolMetrics:
    """The main process's pool gauges; created once the worker runs (after livekit-agents has
    emptied the multiprocess folder, which would otherwise delete their files)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge

        self.active_sessions = Gauge(
            "stimm_worker_active_sessions",
            "Sessions this worker is running",
            multiprocess_mode="livemax",
        )
        self.load = Gauge(
            "stimm_worker_load", "Load reported to LiveKit (0..1)", multiprocess_mode="livemax"
        )
        self.draining = Gauge(
            "stimm_worker_draining", "1 while the worker drains", multiprocess_mode="livemax"
        )
        self.p95 = Gauge(
            "stimm_worker_turn_latency_p95_seconds",
            "Recent p95 end-of-speech to first agent audio",
            multiprocess_mode="livemax",
        )
        self.jobs = Counter("stimm_worker_jobs", "Jobs by outcome", ["outcome"])


class PoolMember:
    """Load function, status endpoints and heartbeats of one worker.

    Args:
        options: Pool options.
        multiproc_dir: The Prometheus multiprocess folder (from ``ensure_multiproc_dir``).
        control_plane_url: ``STIMM_CONTROL_PLANE_URL`` by default.
        worker_token: ``STIMM_WORKER_TOKEN`` by default.
    """

    def __init__(
        self,
        options: PoolOptions,
        *,
        multiproc_dir: str | None = None,
        control_plane_url: str | None = None,
        worker_token: str | None = None,
    ) -> None:
        self.options = options
        self.load = WorkerLoad(
            options.load, multiproc_dir=multiproc_dir, cpu=CpuMeter(self._busy_pids).share
        )
        self._control_plane_url = control_plane_url or os.environ.get(
            "STIMM_CONTROL_PLANE_URL", "http://127.0.0.1:8000"
        )
        self._token = worker_token or os.environ.get("STIMM_WORKER_TOKEN", "")
        self._server: AgentServer | None = None
        self._status: web.AppRunner | None = None
        self._status_port = options.status_port
        self._metrics: PoolMetrics | None = None
        self._task: asyncio.Task[None] | None = None
        self._launched: set[str] = set()
        self.jobs_accepted = 0
        self.jobs_failed = 0
        self._heartbeat_failing = False
        self._wake = asyncio.Event()
        self._accepted: dict[str, tuple[str | None, float]] = {}
        """Job id → (session id, when) of jobs accepted but not running yet."""

    def server_options(self) -> dict[str, Any]:
        """``AgentServer`` keyword arguments: load, threshold, drain, executor, prewarm."""
        return {
            "load_fnc": self.load_fnc,
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
        """Take the job if a session slot is free, and tell the control plane at once.

        livekit-agents' own check can let a burst of simultaneous requests through (its load
        estimate lags the jobs it has just launched), so the slots are counted here too: jobs
        running plus jobs accepted and not yet running. The control plane confirms a dispatch
        by seeing its session in a heartbeat; waiting for the job process to start (seconds
        when no prewarmed one is idle) would make it dispatch again.
        """
        if self.draining or self.sessions() >= self.options.load.max_sessions:
            logger.info("job %s refused: all %d session slots taken", req.job.id, self.sessions())
            await req.reject()
            return
        # reported before accept(): that returns only once the job has a process
        self._accepted[req.job.id] = (_session_of(req.job.metadata), time.monotonic())
        self._wake.set()
        try:
            await req.accept()
        except BaseException:
            self._accepted.pop(req.job.id, None)
            raise

    def sessions(self) -> int:
        """Jobs running, plus jobs accepted that have no process yet.

        Also called from livekit-agents' load thread: reads a snapshot, never mutates.
        """
        if self._server is None:
            return 0
        running = {info.job.id for info in self._server.active_jobs}
        now = time.monotonic()
        pending = [
            job_id
            for job_id, (_, at) in list(self._accepted.items())
            if job_id not in running and now - at < ACCEPTED_TTL_S
        ]
        return len(running) + len(pending)

    def _prune_accepted(self) -> None:
        assert self._server is not None
        running = {info.job.id for info in self._server.active_jobs}
        now = time.monotonic()
        self._accepted = {
            job_id: (sid, at)
            for job_id, (sid, at) in self._accepted.items()
            if job_id not in running and now - at < ACCEPTED_TTL_S
        }

    def _busy_pids(self) -> list[int]:
        """The main process and the job processes running a call: a job process that is
        prewarming for the next call uses CPU without slowing the calls in progress."""
        pids = [os.getpid()]
        for proc in getattr(getattr(self._server, "_proc_pool", None), "processes", []):
            pid = getattr(proc, "pid", None)
            if pid is not None and getattr(proc, "running_job", None) is not None:
                pids.append(pid)
        return pids

    def load_fnc(self, server: AgentServer) -> float:
        """The ``AgentServer``'s load function: ``WorkerLoad`` over the jobs running.

        Jobs accepted but not running yet are left out on purpose: livekit-agents adds its
        own estimate for each of them (``reserved slots`` × load per running job) before it
        answers LiveKit, so counting them here too made a worker with 2 of 4 slots busy and
        one job starting refuse the next caller — and a burst of calls found every worker
        "not available" while half their slots were free.
        """
        return self.load.read(len(server.active_jobs)).load

    def attach(self, server: AgentServer) -> None:
        """Start the status server and heartbeats when ``server`` starts."""
        self._server = server
        server.on("worker_started", self._on_started)

    # -- state -------------------------------------------------------------------------------

    @property
    def registered(self) -> bool:
        return self._server is not None and self._server.id != UNREGISTERED

    @property
    def draining(self) -> bool:
        return self._server is not None and self._server.draining

    def heartbeat(self, reading: LoadReading) -> WorkerHeartbeat:
        assert self._server is not None
        self._prune_accepted()
        sessions = [_session_of(info.job.metadata) for info in self._server.active_jobs]
        sessions += [sid for sid, _ in self._accepted.values()]
        host = self.options.advertise_host
        metrics_port = getattr(getattr(self._server, "_prometheus_server", None), "port", None)
        return WorkerHeartbeat(
            worker_id=self._server.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            load=min(1.0, max(0.0, reading.load)),
            threshold=self.options.load.threshold,
            max_sessions=self.options.load.max_sessions,
            active_jobs=len(self._server.active_jobs),
            sessions=[sid for sid in sessions if sid],
            draining=self.draining,
            p95_latency_s=reading.p95_latency_s,
            cpu_share=reading.cpu_share,
            jobs_accepted=self.jobs_accepted,
            jobs_failed=self.jobs_failed,
            status_url=f"http://{host}:{self._status_port}",
            metrics_url=f"http://{host}:{metrics_port}/metrics" if metrics_port else None,
        )

    def _count_jobs(self) -> None:
        """Jobs accepted = job ids seen running; failed = job processes that ended badly."""
        assert self._server is not None
        running = {info.job.id for info in self._server.active_jobs}
        started = len(running - self._launched)
        self._launched = running
        if started:
            self.jobs_accepted += started
            if self._metrics:
                self._metrics.jobs.labels(outcome="accepted").inc(started)

    def _on_process_closed(self, proc: Any) -> None:
        exitcode = getattr(proc, "exitcode", None)
        if getattr(proc, "killed", False) or exitcode not in (0, None):
            self.jobs_failed += 1
            if self._metrics:
                self._metrics.jobs.labels(outcome="failed").inc()

    # -- tasks -------------------------------------------------------------------------------

    def _on_started(self) -> None:
        self._metrics = PoolMetrics()
        pool = getattr(self._server, "_proc_pool", None)
        if pool is not None:
            pool.on("process_closed", self._on_process_closed)
            # report a new job at once: the control plane waits for it to confirm the dispatch
            pool.on("process_job_launched", lambda _proc: self._wake.set())
        self._task = asyncio.create_task(self._run(), name="stimm_pool_member")

    async def _run(self) -> None:
        await self._start_status_server()
        async with httpx.AsyncClient(
            base_url=self._control_plane_url,
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=HEARTBEAT_TIMEOUT_S,
        ) as http:
            was_draining = False
            try:
                while True:
                    await self._tick(http)
                    if self.draining and not was_draining:
                        was_draining = True
                        logger.info(
                            "worker draining: no new jobs, %d running session(s) finish first",
                            len(self._server.active_jobs) if self._server else 0,
                        )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.options.heartbeat_interval_s)
                    self._wake.clear()
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._deregister(http))
                if self._status is not None:
                    await self._status.cleanup()

    async def _tick(self, http: httpx.AsyncClient) -> None:
        assert self._server is not None
        self._count_jobs()
        # livekit-agents evaluates the load every few seconds; between two, reuse its reading
        reading = self.load.last
        if reading is None:
            loop = asyncio.get_running_loop()
            reading = await loop.run_in_executor(None, self.load.read, self.sessions())
        if self._metrics:
            self._metrics.active_sessions.set(len(self._server.active_jobs))
            self._metrics.load.set(reading.load)
            self._metrics.draining.set(1 if self.draining else 0)
            self._metrics.p95.set(reading.p95_latency_s or 0.0)
        if not self.registered:
            return
        try:
            resp = await http.post(
                "/api/worker/heartbeat", json=self.heartbeat(reading).model_dump(mode="json")
            )
            resp.raise_for_status()
            if self._heartbeat_failing:
                logger.info("heartbeats reach the control plane again")
            self._heartbeat_failing = False
        except httpx.HTTPError as e:
            if not self._heartbeat_failing:
                logger.warning("heartbeat to the control plane failed: %s", e)
            self._heartbeat_failing = True

    async def _deregister(self, http: httpx.AsyncClient) -> None:
        if self.registered and self._server is not None:
            await http.delete(f"/api/worker/workers/{self._server.id}", timeout=1.0)

    async def _start_status_server(self) -> None:
        app = web.Application()
        app.add_routes(
            [
                web.get("/live", self._live),
                web.get("/ready", self._ready),
                web.get("/status", self._status_json),
            ]
        )
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, self.options.status_host, self.options.status_port)
        await site.start()
        self._status = runner
        if runner.addresses:
            self._status_port = int(runner.addresses[0][1])
        logger.info("worker status on port %d (/live, /ready, /status)", self._status_port)

    async def _live(self, _: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def _ready(self, _: web.Request) -> web.Response:
        if self.draining:
            return web.Response(status=503, text="draining")
        if not self.registered:
            return web.Response(status=503, text="not registered with LiveKit")
        return web.Response(text="OK")

    async def _status_json(self, _: web.Request) -> web.Response:
        reading = self.load.last or self.load.read(0)
        if not self.registered:
            return web.json_response({"registered": False, "draining": self.draining})
        return web.Response(
            text=self.heartbeat(reading).model_dump_json(), content_type="application/json"
        )
