"""Compare two eval reports metric by metric; a regression gate for CI.

A metric **regresses** when it moves the wrong way by more than ``tolerance`` (absolute, in the
metric's own units; rates are 0..1): down for rates and scores, up for latencies, errors and
unsupported claims. Metrics missing on either side are shown and never gate. Latency is shown
but only gates when ``gate_latency`` is set (timings differ between machines and runs).

Only reports of the same eval set compare: ``mismatch`` says why two do not (a different set
file, by its SHA-256 in the provenance, or a different number of cases).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LOWER_IS_BETTER_PREFIXES = ("latency_", "n_errors", "unsupported_claims", "price_band_error")
IGNORED = ("n",)  # cases scored: a drop shows as n_errors, or as a different set (``mismatch``)


def load_report(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        raise FileNotFoundError(f"no eval report at {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg})") from exc


def lower_is_better(metric: str) -> bool:
    return metric.startswith(LOWER_IS_BETTER_PREFIXES)


def mismatch(base: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why the two reports' metrics do not compare, or ``None`` when they come from one set."""
    sets = [(report.get("provenance") or {}).get("set_sha256") for report in (base, new)]
    if all(sets) and sets[0] != sets[1]:
        return (f"the reports come from different eval sets ({base.get('set')} sha256 "
                f"{sets[0][:12]}, {new.get('set')} sha256 {sets[1][:12]})")
    counts = [report.get("case_count") for report in (base, new)]
    if counts[0] != counts[1]:
        return f"the reports hold different numbers of cases ({counts[0]} and {counts[1]})"
    return None


def compare(base: dict[str, Any], new: dict[str, Any], tolerance: float = 0.02,
            gate_latency: bool = False) -> list[dict[str, Any]]:
    """One row per metric of either report's overall ``metrics``:
    ``{metric, base, new, diff, base_interval, new_interval, regressed}``."""
    rows = []
    base_metrics, new_metrics = base.get("metrics") or {}, new.get("metrics") or {}
    base_ci, new_ci = base.get("intervals") or {}, new.get("intervals") or {}
    for metric in dict.fromkeys([*base_metrics, *new_metrics]):
        if metric in IGNORED:
            continue
        a, b = base_metrics.get(metric), new_metrics.get(metric)
        numeric = isinstance(a, (int, float)) and isinstance(b, (int, float))
        diff = round(b - a, 4) if numeric else None
        regressed = False
        if numeric and (gate_latency or not metric.startswith("latency_")):
            worse = diff if lower_is_better(metric) else -diff
            regressed = worse > tolerance + 1e-12
        rows.append({"metric": metric, "base": a, "new": b, "diff": diff,
                     "base_interval": base_ci.get(metric), "new_interval": new_ci.get(metric),
                     "regressed": regressed})
    return rows
