"""Fewer points for display, extremes kept: min/max per bucket (docs/report.md#downsampling).

A curve of ``n`` points becomes at most ``budget`` points: the points are cut into
``budget // 2`` buckets of consecutive points and each bucket keeps its lowest and its highest
point, in step order, so a spike or a dip of one point is still drawn; the first and the last point
are always kept. NaN points are kept where a bucket holds nothing else (a gap in the curve). The
data itself is never changed: only what the page draws."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["minmax_indices"]


def minmax_indices(values: Sequence[float] | np.ndarray, budget: int) -> np.ndarray:
    """Indices (ascending) of the points to draw out of ``values``, at most ``max(budget, 4)``."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    budget = max(int(budget), 4)
    if n <= budget:
        return np.arange(n)
    buckets = (budget - 2) // 2
    inner = v[1:n - 1]
    size = -(-len(inner) // buckets)  # ceil: every bucket holds ``size`` points, the last may be padded
    pad = size * buckets - len(inner)
    finite = np.isfinite(inner)
    lows = np.concatenate([np.where(finite, inner, np.inf), np.full(pad, np.inf)]).reshape(buckets, size)
    highs = np.concatenate([np.where(finite, inner, -np.inf), np.full(pad, -np.inf)]).reshape(buckets, size)
    base = np.arange(buckets, dtype=np.int64) * size
    picked = np.concatenate([base + lows.argmin(axis=1), base + highs.argmax(axis=1)]) + 1
    picked = picked[picked < n - 1]  # a padded bucket's pick
    return np.unique(np.concatenate([np.array([0, n - 1], dtype=np.int64), picked]))
