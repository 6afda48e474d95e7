"""Per-turn latency as Prometheus metrics, served by the ``AgentServer`` on ``/metrics``.

Turns happen in job processes; the worker's HTTP server only sees them when
``PROMETHEUS_MULTIPROC_DIR`` is set (livekit-agents then collects every process's files), which
``worker.main`` does whenever a Prometheus port is configured.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from stimm.schema import TurnIn

STAGE_BUCKETS = (
    *(0.05, 0.1, 0.2, 0.3, 0.5, 0.75),
    *(1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0),
    *(8.0, 10.0, 13.0),
)
"""Half-second steps (quarter below 2 s) over the range latency SLOs live in: the worker's load
reads its p95 from this histogram, and with steps of 2 s near a 5 s SLO the interpolated p95
was off by a second."""

TURN_LATENCY = Histogram(
    "stimm_turn_stage_seconds",
    "Latency of one stage of a conversation turn",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
TURNS = Counter(
    "stimm_turns",
    "Finished conversation turns",
    ["role", "interrupted"],
)
STAGES = (
    "end_of_turn_delay",
    "transcription_delay",
    "llm_ttft",
    "tts_ttfb",
    "e2e_latency",
    "retrieval",
)
"""The ``stage`` label values: the fields of ``TurnMetrics``."""


def observe_turn(turn: TurnIn) -> None:
    """Record one finished turn's figures."""
    TURNS.labels(role=turn.role, interrupted=str(turn.interrupted).lower()).inc()
    values = turn.metrics.model_dump()
    for stage in STAGES:
        value = values.get(stage)
        if value is not None and value >= 0:
            TURN_LATENCY.labels(stage=stage).observe(value)
