"""The worker's load signal: sessions, recent p95 latency and CPU against their limits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from worker.load import (
    LatencyWindow,
    LoadOptions,
    WorkerLoad,
    quantile,
    read_turn_latency,
)

pytestmark = pytest.mark.unit

BOUNDS = (0.5, 1.0, 1.5, 2.0, 3.0, float("inf"))


def cumulative(values: list[float]) -> dict[float, float]:
    return {b: float(sum(1 for v in values if v <= b)) for b in BOUNDS}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_quantile_interpolates_within_the_bucket_like_prometheus() -> None:
    # 100 turns: 90 at <= 1.0 s, 10 between 1.0 and 1.5 s → p95 halfway into (1.0, 1.5]
    buckets = {0.5: 0.0, 1.0: 90.0, 1.5: 100.0, float("inf"): 100.0}
    assert quantile(0.95, buckets) == pytest.approx(1.25)
    assert quantile(0.95, {}) is None
    assert quantile(0.95, {1.0: 0.0, float("inf"): 0.0}) is None
    # everything above the last finite bound: the bound is the best we know
    assert quantile(0.95, {1.0: 0.0, float("inf"): 3.0}) == 1.0


def test_latency_window_forgets_turns_older_than_the_window() -> None:
    window = LatencyWindow(window_s=60)
    slow = [2.8] * 20
    window.add(0.0, cumulative([]))
    window.add(10.0, cumulative(slow))
    p95 = window.p95()
    assert p95 is not None and p95 > 2.0
    # a minute later only fast turns happened: the slow ones no longer count
    window.add(80.0, cumulative(slow + [0.4] * 20))
    window.add(85.0, cumulative(slow + [0.4] * 40))
    p95 = window.p95()
    assert p95 is not None and p95 <= 0.5


def test_sessions_alone_make_the_worker_full_at_max_sessions() -> None:
    load = WorkerLoad(
        LoadOptions(max_sessions=4, latency_slo_s=0, cpu_limit=0), cpu=lambda: 0.9, latency=dict
    )
    assert load.read(2).load == pytest.approx(0.5)
    assert load.read(4).load >= LoadOptions().threshold
    assert load.read(7).load == 1.0


def test_slow_turns_fill_the_worker_before_its_session_slots() -> None:
    clock = Clock()
    turns: list[float] = []
    load = WorkerLoad(
        LoadOptions(max_sessions=8, latency_slo_s=1.5, cpu_limit=0),
        clock=clock,
        cpu=lambda: 0.0,
        latency=lambda: cumulative(turns),
    )
    assert load.read(1).load == pytest.approx(1 / 8)
    clock.now = 5
    turns.extend([1.2] * 10 + [2.5] * 5)
    reading = load.read(2)
    assert reading.p95_latency_s is not None and reading.p95_latency_s > 1.5
    assert reading.load >= LoadOptions().threshold  # 2 of 8 slots, but callers wait too long
    # an idle worker is not held back by the latency of calls it no longer has
    assert load.read(0).load == 0.0


def test_cpu_of_the_workers_own_processes_counts_against_its_limit() -> None:
    load = WorkerLoad(
        LoadOptions(max_sessions=10, latency_slo_s=0, cpu_limit=0.8), cpu=lambda: 0.6, latency=dict
    )
    reading = load.read(1)
    assert reading.cpu_pressure == pytest.approx(0.75)
    assert reading.load == pytest.approx(0.75)


def test_options_from_env_and_their_errors() -> None:
    opts = LoadOptions.from_env(
        {
            "STIMM_WORKER_MAX_SESSIONS": "6",
            "STIMM_WORKER_LATENCY_SLO": "2.0",
            "STIMM_WORKER_CPU_LIMIT": "0",
            "STIMM_WORKER_LOAD_THRESHOLD": "0.8",
        }
    )
    assert (opts.max_sessions, opts.latency_slo_s, opts.cpu_limit, opts.threshold) == (
        6,
        2.0,
        0.0,
        0.8,
    )
    with pytest.raises(ValueError, match="STIMM_WORKER_LATENCY_SLO"):
        LoadOptions.from_env({"STIMM_WORKER_LATENCY_SLO": "fast"})
    with pytest.raises(ValueError, match="max_sessions"):
        LoadOptions.from_env({"STIMM_WORKER_MAX_SESSIONS": "0"})
    with pytest.raises(ValueError, match="threshold"):
        LoadOptions(threshold=1.0)


def test_turn_latency_of_job_processes_is_read_from_their_metric_files(tmp_path: Path) -> None:
    # Two "job processes" record turns the way worker.recorder does, each in its own process.
    script = textwrap.dedent(
        """
        import sys
        from stimm.schema import TurnIn, TurnMetrics
        from worker.metrics import observe_turn
        for v in map(float, sys.argv[1:]):
            observe_turn(TurnIn(role="assistant", text="x", metrics=TurnMetrics(e2e_latency=v)))
        """
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    root = Path(__file__).parents[2]
    for values in (["0.4", "0.6"], ["2.5"]):
        subprocess.run(
            [sys.executable, "-c", script, *values], check=True, env=env, cwd=root, timeout=60
        )
    buckets = read_turn_latency(str(tmp_path))
    assert buckets[float("inf")] == 3.0
    assert buckets[0.5] == 1.0
    assert read_turn_latency(str(tmp_path / "missing")) == {}
