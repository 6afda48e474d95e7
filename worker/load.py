"""The load a worker reports to LiveKit, which decides whether it gets the next job."""

from __future__ import annotations

from livekit.agents import AgentServer

LOAD_THRESHOLD = 0.999
"""livekit-agents refuses a threshold of 1 in production; with load = sessions / capacity this
marks the worker full exactly when it runs ``max_sessions`` sessions."""


class SessionLoad:
    """Load as the share of session slots in use.

    livekit-agents' default is the machine's CPU average: on a shared box any other busy
    process then makes the worker refuse jobs, and LiveKit drops a dispatch no worker accepts.
    Counting sessions makes availability depend on this worker's own work.

    Args:
        max_sessions: How many concurrent sessions this worker takes.
    """

    def __init__(self, max_sessions: int) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.max_sessions = max_sessions

    def __call__(self, server: AgentServer) -> float:
        return min(1.0, len(server.active_jobs) / self.max_sessions)
