"""Lab 4, which metrics got worse between two eval reports. Read labs/lab4_eval/README.md
(step 4)."""

from __future__ import annotations

from typing import Any


def list_regressions(base: dict[str, Any], new: dict[str, Any],
                     tolerance: float = 0.02) -> list[str]:
    """Names of the metrics of ``new`` (``report["metrics"]``) that moved the wrong way by more
    than ``tolerance`` against ``base``: down for rates, up for errors and unsupported claims.
    Latency is left out (it differs between machines); a metric missing on either side never
    counts. Keep the reports' metric order."""
    # TODO (README step 4): hint: evals/compare.py
    raise NotImplementedError("TODO (README step 4): list_regressions is not written yet")
