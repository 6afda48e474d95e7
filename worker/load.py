"""The load a worker reports to LiveKit, which decides whether it gets the next job.

Load is the highest of three pressures, each 1.0 at its limit:

- **sessions**: active sessions / ``max_sessions``;
- **latency**: the recent p95 of end-of-speech → first agent audio (``e2e_latency`` of the turns
  the job processes record in ``worker.metrics``) / the latency SLO;
- **cpu**: the CPU share of this worker's own processes running calls (the main process and
  its busy job processes; prewarming idle ones does not count) / ``cpu_limit``.

A worker whose load reaches ``threshold`` answers LiveKit's availability requests with "not
available", and LiveKit offers the job to another worker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psutil

logger = logging.getLogger("stimm.worker")

LOAD_THRESHOLD = 0.999
"""livekit-agents refuses a threshold of 1 in production; with sessions as the only pressure
this marks the worker full exactly when it runs ``max_sessions`` sessions."""

LATENCY_METRIC = "stimm_turn_stage_seconds"
LATENCY_STAGE = "e2e_latency"

Buckets = dict[float, float]
"""Cumulative histogram: upper bound (``le``) → observations at or below it."""


@dataclass
class LoadOptions:
    """What a worker counts as full.

    Args:
        max_sessions: Concurrent sessions one worker takes (``STIMM_WORKER_MAX_SESSIONS``).
        latency_slo_s: p95 end-of-speech → first audio the worker must keep
            (``STIMM_WORKER_LATENCY_SLO``); 0 leaves latency out. The default suits the
            offline Whisper/Piper providers on a small machine (~3 s for one session alone);
            with streaming STT/TTS providers set it near 1.5 s.
        cpu_limit: Share of the machine's CPUs the worker's processes may use
            (``STIMM_WORKER_CPU_LIMIT``); 0 leaves CPU out.
        threshold: Load at which the worker stops taking jobs (``STIMM_WORKER_LOAD_THRESHOLD``).
        window_s: How far back the latency p95 looks.
    """

    max_sessions: int = 4
    latency_slo_s: float = 5.0
    cpu_limit: float = 0.9
    threshold: float = LOAD_THRESHOLD
    window_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        if self.latency_slo_s < 0 or self.cpu_limit < 0:
            raise ValueError("latency_slo_s and cpu_limit must be >= 0 (0 disables them)")
        if not 0 < self.threshold < 1:
            raise ValueError("threshold must be between 0 and 1 (exclusive)")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LoadOptions:
        env = os.environ if env is None else env

        def get(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            try:
                return float(raw) if raw else default
            except ValueError as e:
                raise ValueError(f"{name} must be a number, got {raw!r}") from e

        return cls(
            max_sessions=int(get("STIMM_WORKER_MAX_SESSIONS", cls.max_sessions)),
            latency_slo_s=get("STIMM_WORKER_LATENCY_SLO", cls.latency_slo_s),
            cpu_limit=get("STIMM_WORKER_CPU_LIMIT", cls.cpu_limit),
            threshold=get("STIMM_WORKER_LOAD_THRESHOLD", cls.threshold),
        )


@dataclass(frozen=True)
class LoadReading:
    """One evaluation of the load and the figures it came from."""

    sessions: int
    p95_latency_s: float | None
    cpu_share: float
    session_pressure: float
    latency_pressure: float
    cpu_pressure: float

    @property
    def load(self) -> float:
        return min(1.0, max(self.session_pressure, self.latency_pressure, self.cpu_pressure))


def quantile(q: float, buckets: Buckets) -> float | None:
    """The ``q`` quantile of a cumulative histogram, interpolated like ``histogram_quantile``."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    finite = [b for b in bounds if b != float("inf")]
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return finite[-1] if finite else None
            in_bucket = count - below
            if in_bucket <= 0:
                return bound
            return lower + (bound - lower) * (rank - below) / in_bucket
        lower, below = bound, count
    return finite[-1] if finite else None


class LatencyWindow:
    """The p95 over the last ``window_s`` seconds, from snapshots of a cumulative histogram."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._snapshots: deque[tuple[float, Buckets]] = deque()

    def add(self, now: float, cumulative: Buckets) -> None:
        self._snapshots.append((now, cumulative))
        # keep one snapshot at or before the window's start to diff against
        while len(self._snapshots) > 1 and self._snapshots[1][0] <= now - self.window_s:
            self._snapshots.popleft()

    def p95(self) -> float | None:
        if not self._snapshots:
            return None
        (_, first), (_, last) = self._snapshots[0], self._snapshots[-1]
        if len(self._snapshots) == 1:
            first = {}
        delta = {le: count - first.get(le, 0.0) for le, count in last.items()}
        return quantile(0.95, delta)


def read_turn_latency(multiproc_dir: str | None) -> Buckets:
    """The end-of-speech → first-audio histogram summed over all of the worker's processes.

    Job processes write their metrics to ``PROMETHEUS_MULTIPROC_DIR`` (one file per process);
    this reads those files the way the ``/metrics`` endpoint does.
    """
    if not multiproc_dir or not os.path.isdir(multiproc_dir):
        return {}
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
    buckets: Buckets = {}
    for family in registry.collect():
        if family.name != LATENCY_METRIC:
            continue
        for sample in family.samples:
            if not sample.name.endswith("_bucket"):
                continue
            if sample.labels.get("stage") != LATENCY_STAGE:
                continue
            le = float(sample.labels["le"])
            buckets[le] = buckets.get(le, 0.0) + sample.value
    return buckets


class CpuMeter:
    """CPU share of the machine used by some processes since the last call.

    Args:
        pids: Gives the processes to count; this process and all its children by default.
    """

    def __init__(self, pids: Callable[[], list[int]] | None = None) -> None:
        self._pids = pids or self._tree
        self._procs: dict[int, psutil.Process] = {}
        self._cpus = psutil.cpu_count() or 1

    @staticmethod
    def _tree() -> list[int]:
        root = psutil.Process()
        try:
            return [root.pid, *(p.pid for p in root.children(recursive=True))]
        except psutil.Error:
            return [root.pid]

    def share(self) -> float:
        total = 0.0
        seen: dict[int, psutil.Process] = {}
        for pid in self._pids():
            try:
                # the first call of a Process object primes it and returns 0
                known = self._procs.get(pid) or psutil.Process(pid)
                total += known.cpu_percent(None)
            except psutil.Error:
                continue
            seen[pid] = known
        self._procs = seen
        return total / (100.0 * self._cpus)


class WorkerLoad:
    """``load_fnc`` of the ``AgentServer``: see the module docstring.

    Args:
        options: Limits and threshold.
        multiproc_dir: The Prometheus multiprocess folder the job processes write to.
        clock: Monotonic clock, for tests.
        cpu: Gives the CPU share; a ``CpuMeter`` of this process by default.
        latency: Gives the cumulative latency histogram; read from ``multiproc_dir`` by default.
    """

    def __init__(
        self,
        options: LoadOptions,
        *,
        multiproc_dir: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] | None = None,
        latency: Callable[[], Buckets] | None = None,
    ) -> None:
        self.options = options
        self._clock = clock
        self._cpu = cpu or CpuMeter().share
        self._latency = latency or (lambda: read_turn_latency(multiproc_dir))
        self._window = LatencyWindow(options.window_s)
        self.last: LoadReading | None = None
        self._lock = threading.Lock()  # livekit-agents calls the load function from a thread

    def read(self, sessions: int) -> LoadReading:
        with self._lock:
            return self._read(sessions)

    def _read(self, sessions: int) -> LoadReading:
        o = self.options
        p95: float | None = None
        if o.latency_slo_s > 0:
            try:
                self._window.add(self._clock(), self._latency())
            except (OSError, ValueError) as e:  # a job process writing its file right now
                logger.debug("latency histogram not readable: %s", e)
            p95 = self._window.p95()
        cpu = self._cpu() if o.cpu_limit > 0 else 0.0
        reading = LoadReading(
            sessions=sessions,
            p95_latency_s=p95,
            cpu_share=cpu,
            session_pressure=sessions / o.max_sessions,
            latency_pressure=(p95 / o.latency_slo_s) if p95 is not None and sessions else 0.0,
            cpu_pressure=cpu / o.cpu_limit if o.cpu_limit > 0 else 0.0,
        )
        self.last = reading
        return reading
