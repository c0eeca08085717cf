"""Medians, spreads and percentiles (no NumPy needed)."""

from __future__ import annotations

import math
import statistics
from typing import Sequence


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of an already sorted sequence (q in [0, 1])."""
    if not sorted_xs:
        return math.nan
    pos = q * (len(sorted_xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    frac = pos - lo
    return float(sorted_xs[lo] * (1 - frac) + sorted_xs[hi] * frac)


def spread_pct(xs: Sequence[float]) -> float:
    """(max - min) / median, in percent: how far apart the repetitions were."""
    if len(xs) < 2:
        return 0.0
    m = median(xs)
    return 100.0 * (max(xs) - min(xs)) / m if m else math.nan


def iqr(xs: Sequence[float]) -> tuple[float, float]:
    s = sorted(xs)
    return quantile(s, 0.25), quantile(s, 0.75)


def latency_percentiles(rtts_ns: Sequence[int]) -> dict[str, float]:
    """p50/p99/p99.9 and the mean of round-trip times, in microseconds."""
    s = sorted(rtts_ns)
    return {
        "p50_us": quantile(s, 0.50) / 1e3,
        "p99_us": quantile(s, 0.99) / 1e3,
        "p999_us": quantile(s, 0.999) / 1e3,
        "mean_us": (sum(s) / len(s)) / 1e3,
        "samples": float(len(s)),
    }
