"""Figures the benchmarks share."""

from __future__ import annotations


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile by nearest rank (no interpolation): a value that was measured."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
