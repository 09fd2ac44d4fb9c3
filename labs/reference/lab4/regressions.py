"""Lab 4 reference: which metrics got worse between two eval reports."""

from __future__ import annotations

from typing import Any

from evals.compare import compare


def list_regressions(base: dict[str, Any], new: dict[str, Any],
                     tolerance: float = 0.02) -> list[str]:
    """Names of the metrics of ``new`` that moved the wrong way by more than ``tolerance``
    against ``base`` (latency excluded), in the reports' metric order."""
    return [row["metric"] for row in compare(base, new, tolerance) if row["regressed"]]
