"""Small statistics helpers: percentiles by linear interpolation, medians of run figures."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values``, interpolated; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(prefix: str, seconds: Sequence[float], points: Iterable[str]) -> dict[str, Any]:
    """``{prefix_p50: ms, ...}`` for the named points (p50, p95, p99, max, mean)."""
    out: dict[str, Any] = {}
    for point in points:
        if not seconds:
            value = None
        elif point == "max":
            value = max(seconds)
        elif point == "mean":
            value = statistics.fmean(seconds)
        else:
            value = percentile(seconds, float(point[1:]))
        out[f"{prefix}_{point}"] = None if value is None else round(value * 1000, 2)
    return out


def median_of(values: Iterable[Any]) -> Any:
    """The median of the numbers among ``values`` (None ignored); nested dicts key by key."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    if all(isinstance(v, dict) for v in present):
        keys = sorted({k for v in present for k in v})
        return {k: median_of(v.get(k, 0) for v in present) for k in keys}
    if all(isinstance(v, bool) for v in present):
        return all(present)
    numbers = [v for v in present if isinstance(v, int | float)]
    if not numbers:
        return present[0]
    value = statistics.median(numbers)
    return round(value, 4) if isinstance(value, float) else value
