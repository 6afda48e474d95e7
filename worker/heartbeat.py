"""Heartbeats: the worker reports itself to the control plane's pool view every
``heartbeat_interval_s`` (and at once on a new job), and updates its Prometheus pool gauges.

Jobs that failed are counted from the private ``AgentServer._proc_pool``'s ``process_closed``
event, and a launched job wakes the loop through its ``process_job_launched`` event:
livekit-agents 1.8.9 emits neither on the ``AgentServer`` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from livekit.agents import AgentServer

from stimm.schema import WorkerHeartbeat
from worker.control_plane_client import ControlPlaneClient, ControlPlaneError
from worker.load import LoadReading, WorkerLoad

logger = logging.getLogger("stimm.worker")

HEARTBEAT_TIMEOUT_S = 5.0

UNREGISTERED = "unregistered"
"""``AgentServer.id`` until LiveKit has registered the worker."""


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


class Heartbeats:
    """The heartbeat loop of one worker.

    Args:
        server: The worker's ``AgentServer``.
        load: Its load (the last reading is reused between livekit-agents' own reads).
        report: Builds the heartbeat from a load reading.
        sessions: How many session slots are taken.
        interval_s: Seconds between heartbeats.
        client: The control-plane client; one is made from the environment by default.
    """

    def __init__(
        self,
        server: AgentServer,
        load: WorkerLoad,
        *,
        report: Callable[[LoadReading], WorkerHeartbeat],
        sessions: Callable[[], int],
        interval_s: float,
        client: ControlPlaneClient | None = None,
    ) -> None:
        self._server = server
        self._load = load
        self._report = report
        self._sessions = sessions
        self._interval_s = interval_s
        self._client = client
        self.metrics: PoolMetrics | None = None
        self.jobs_accepted = 0
        self.jobs_failed = 0
        self._launched: set[str] = set()
        self._failing = False
        self._wake = asyncio.Event()

    @property
    def registered(self) -> bool:
        return self._server.id != UNREGISTERED

    def wake(self) -> None:
        """Send the next heartbeat now."""
        self._wake.set()

    def watch_processes(self) -> None:
        """Count failed job processes, and report launched ones at once (see module doc)."""
        self.metrics = PoolMetrics()
        pool = getattr(self._server, "_proc_pool", None)
        if pool is not None:
            pool.on("process_closed", self._on_process_closed)
            # report a new job at once: the control plane waits for it to confirm the dispatch
            pool.on("process_job_launched", lambda _proc: self.wake())

    async def run(self) -> None:
        """Beat until cancelled, then leave the pool."""
        client = self._client or ControlPlaneClient(timeout=HEARTBEAT_TIMEOUT_S)
        was_draining = False
        try:
            while True:
                await self._tick(client)
                if self._server.draining and not was_draining:
                    was_draining = True
                    logger.info(
                        "worker draining: no new jobs, %d running session(s) finish first",
                        len(self._server.active_jobs),
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._interval_s)
                self._wake.clear()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._leave(client))
            if self._client is None:
                await client.aclose()

    def _count_jobs(self) -> None:
        """Jobs accepted = job ids seen running; failed = job processes that ended badly."""
        running = {info.job.id for info in self._server.active_jobs}
        started = len(running - self._launched)
        self._launched = running
        if started:
            self.jobs_accepted += started
            if self.metrics:
                self.metrics.jobs.labels(outcome="accepted").inc(started)

    def _on_process_closed(self, proc: Any) -> None:
        exitcode = getattr(proc, "exitcode", None)
        if getattr(proc, "killed", False) or exitcode not in (0, None):
            self.jobs_failed += 1
            if self.metrics:
                self.metrics.jobs.labels(outcome="failed").inc()

    async def _tick(self, client: ControlPlaneClient) -> None:
        self._count_jobs()
        # livekit-agents evaluates the load every few seconds; between two, reuse its reading
        reading = self._load.last
        if reading is None:
            loop = asyncio.get_running_loop()
            reading = await loop.run_in_executor(None, self._load.read, self._sessions())
        if self.metrics:
            self.metrics.active_sessions.set(len(self._server.active_jobs))
            self.metrics.load.set(reading.load)
            self.metrics.draining.set(1 if self._server.draining else 0)
            self.metrics.p95.set(reading.p95_latency_s or 0.0)
        if not self.registered:
            return
        try:
            await client.heartbeat(self._report(reading))
            if self._failing:
                logger.info("heartbeats reach the control plane again")
            self._failing = False
        except ControlPlaneError as e:
            if not self._failing:
                logger.warning("heartbeat to the control plane failed: %s", e)
            self._failing = True

    async def _leave(self, client: ControlPlaneClient) -> None:
        if self.registered:
            await client.leave_pool(self._server.id)
