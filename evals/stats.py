"""95 % bootstrap intervals for the rates of an eval report.

Cases are resampled with replacement ``RESAMPLES`` times with a fixed seed, so the same per-case
values always give the same interval; the interval is the 2.5th and 97.5th percentile of the
resampled means (percentile bootstrap). With fewer than two cases there is no interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RESAMPLES = 1000
SEED = 0


def bootstrap_interval(values: Sequence[float], resamples: int = RESAMPLES,
                       seed: int = SEED) -> list[float] | None:
    data = np.asarray([v for v in values if v is not None], dtype=float)
    if len(data) < 2:
        return None
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def rate_with_interval(values: Sequence[float]) -> dict[str, float | list[float] | None]:
    """``{"value": mean (3 decimals), "ci95": bootstrap_interval(values)}``, the form the
    focused evals (``hs_holdout``, ``market_category``) report a rate in."""
    return {"value": round(sum(values) / len(values), 3), "ci95": bootstrap_interval(values)}
