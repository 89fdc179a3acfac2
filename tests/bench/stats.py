"""Percentiles as latency reports state them: nearest rank, so p99 of 200 samples is the
198th smallest, a value that was actually observed."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], p: float) -> float:
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def distribution_ms(seconds: Sequence[float]) -> dict:
    """p50, p99, max and mean, in milliseconds, of durations given in seconds."""
    if not seconds:
        return {"n": 0, "p50": None, "p99": None, "max": None, "mean": None}
    return {
        "n": len(seconds),
        "p50": round(percentile(seconds, 50) * 1e3, 1),
        "p99": round(percentile(seconds, 99) * 1e3, 1),
        "max": round(max(seconds) * 1e3, 1),
        "mean": round(sum(seconds) / len(seconds) * 1e3, 1),
    }
