"""Admission and load: which jobs this worker takes, and the load it reports to LiveKit.

``Admission.on_request`` is the ``AgentServer``'s job-request handler and ``Admission.load_fnc``
its load function; both count the worker's session slots (see ``worker.load`` for the load).

livekit-agents 1.8.9 has no public list of its job processes: ``busy_pids`` reads the private
``AgentServer._proc_pool`` (each process's ``pid`` and ``running_job``), because
``AgentServer.active_jobs`` gives the jobs without their processes and the CPU pressure must
count only the processes that run a call.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from livekit.agents import AgentServer, JobRequest
from pydantic import ValidationError

from stimm.schema import JobMetadata
from worker.load import CpuMeter, LoadOptions, WorkerLoad

logger = logging.getLogger("stimm.worker")

ACCEPTED_TTL_S = 120.0
"""How long an accepted job that never started running is still counted."""


def session_of(metadata: str | None) -> str | None:
    """The Stimm session id in a job's metadata, if it has a valid one."""
    try:
        return JobMetadata.model_validate_json(metadata or "{}").session_id
    except ValidationError:
        return None


class Admission:
    """Session slots of one worker: jobs running plus jobs accepted that have no process yet.

    Args:
        options: What counts as full.
        multiproc_dir: The Prometheus multiprocess folder the job processes' latencies are in.
        on_accept: Called when a job is accepted (the heartbeat reports it at once).
    """

    def __init__(
        self,
        options: LoadOptions,
        *,
        multiproc_dir: str | None = None,
        on_accept: Callable[[], None] = lambda: None,
    ) -> None:
        self.options = options
        self.load = WorkerLoad(
            options, multiproc_dir=multiproc_dir, cpu=CpuMeter(self.busy_pids).share
        )
        self.server: AgentServer | None = None
        self.accepted: dict[str, tuple[str | None, float]] = {}
        """Job id → (session id, when) of jobs accepted but not running yet."""
        self._on_accept = on_accept

    @property
    def draining(self) -> bool:
        return self.server is not None and self.server.draining

    async def on_request(self, req: JobRequest) -> None:
        """Take the job if a session slot is free.

        livekit-agents' own check can let a burst of simultaneous requests through (its load
        estimate lags the jobs it has just launched), so the slots are counted here too: jobs
        running plus jobs accepted and not yet running. The control plane confirms a dispatch
        by seeing its session in a heartbeat; waiting for the job process to start (seconds
        when no prewarmed one is idle) would make it dispatch again.
        """
        if self.draining or self.sessions() >= self.options.max_sessions:
            logger.info("job %s refused: all %d session slots taken", req.job.id, self.sessions())
            await req.reject()
            return
        # reported before accept(): that returns only once the job has a process
        self.accepted[req.job.id] = (session_of(req.job.metadata), time.monotonic())
        self._on_accept()
        try:
            await req.accept()
        except BaseException:
            self.accepted.pop(req.job.id, None)
            raise

    def _running(self) -> set[str]:
        return {info.job.id for info in self.server.active_jobs} if self.server else set()

    def sessions(self) -> int:
        """Jobs running, plus jobs accepted that have no process yet.

        Also called from livekit-agents' load thread: reads a snapshot, never mutates.
        """
        if self.server is None:
            return 0
        running = self._running()
        now = time.monotonic()
        pending = [
            job_id
            for job_id, (_, at) in list(self.accepted.items())
            if job_id not in running and now - at < ACCEPTED_TTL_S
        ]
        return len(running) + len(pending)

    def session_ids(self) -> list[str]:
        """Session ids of the jobs running and accepted; forgets accepted jobs now running."""
        assert self.server is not None
        running = self._running()
        now = time.monotonic()
        self.accepted = {
            job_id: (sid, at)
            for job_id, (sid, at) in self.accepted.items()
            if job_id not in running and now - at < ACCEPTED_TTL_S
        }
        sessions = [session_of(info.job.metadata) for info in self.server.active_jobs]
        sessions += [sid for sid, _ in self.accepted.values()]
        return [sid for sid in sessions if sid]

    def busy_pids(self) -> list[int]:
        """The main process and the job processes running a call: a job process that is
        prewarming for the next call uses CPU without slowing the calls in progress."""
        pids = [os.getpid()]
        for proc in getattr(getattr(self.server, "_proc_pool", None), "processes", []):
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
