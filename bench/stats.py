"""Statistics of the measurements."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def hist_percentile(hist: dict[int, int], q: float) -> float | None:
    """Nearest-rank percentile (ms) of a histogram of 0.1 ms bins; None for no data."""
    total = sum(hist.values())
    if not total:
        return None
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0
    for tenths in sorted(hist):
        seen += hist[tenths]
        if seen >= rank:
            return tenths / 10
    return None
