"""The garbage collector and a long-lived process's startup heap."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Move everything built so far (modules, models' wrappers, the app and its services) out
    of the cyclic garbage collector's reach: it lives as long as the process, and each full
    collection scanned all of it again.

    Measured on 2 cores: in the control plane each full collection held the event loop ~230 ms
    every 2 s under load (bench/api_load.py); in a worker running its calls on threads, the
    collector took ~11% of its CPU while 20 calls started (``perf``, bench/dispatch.py).
    livekit's forkserver does the same for the job processes it forks
    (``livekit.agents.ipc._preload_freeze``)."""
    gc.collect()
    gc.freeze()
