"""Figures the benchmarks share."""

from __future__ import annotations

import os
import platform
from typing import Any


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile by nearest rank (no interpolation): a value that was measured."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def machine() -> dict[str, Any]:
    """The machine a run measured: cores, Python, and how busy it was at the end."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
    }
