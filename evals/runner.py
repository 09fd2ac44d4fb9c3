"""Score an agent on an eval set: run every case, compute metrics overall and per tag."""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable

import numpy as np
from tqdm import tqdm

from evals.sets import EvalCase

# an agent is anything that maps a case to the result contract
Agent = Callable[[EvalCase], dict[str, Any]]


def _ranked_products(result: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    for item in result.get("shortlist") or []:
        if item.get("product_id") and item["product_id"] not in seen:
            seen.append(item["product_id"])
    return seen


def case_metrics(case: EvalCase, result: dict[str, Any]) -> dict[str, float]:
    """Metrics of one case; a metric appears only when the case carries its ``expect`` key."""
    out: dict[str, float] = {}
    expect = case.expect
    if expect.get("relevant_product_ids"):
        relevant = set(expect["relevant_product_ids"])
        products = _ranked_products(result)
        for k in (1, 3, 5):
            out[f"product_recall@{k}"] = float(any(p in relevant for p in products[:k]))
        ranks = [i for i, p in enumerate(products, 1) if p in relevant]
        out["mrr"] = 1.0 / ranks[0] if ranks else 0.0
    if expect.get("source_supplier_id"):
        suppliers = [item["supplier"]["supplier_id"] for item in result.get("shortlist") or []]
        out["source_factory@1"] = float(suppliers[:1] == [expect["source_supplier_id"]])
        out["source_factory@3"] = float(expect["source_supplier_id"] in suppliers[:3])
    if expect.get("required_legal_acts"):
        acts = {req["legal_act"] for req in (result.get("compliance") or {}).get(
            "requirements") or []}
        wanted = set(expect["required_legal_acts"])
        out["legal_act_recall"] = len(wanted & acts) / len(wanted)
    if expect.get("hs_heading"):
        candidates = (result.get("product") or {}).get("hs_candidates") or []
        out["hs_heading@1"] = float(bool(candidates)
                                    and candidates[0]["code"][:4] == expect["hs_heading"])
    grounding = result.get("grounding") or {}
    out["unsupported_claims"] = float(len(grounding.get("unsupported") or []))
    return out


def _summarise(rows: Iterable[dict[str, float]], latencies: list[float]) -> dict[str, float]:
    sums: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        for key, value in row.items():
            sums[key].append(value)
    summary = {key: round(float(np.mean(values)), 4) for key, values in sorted(sums.items())}
    if latencies:
        summary["latency_ms_p50"] = round(float(np.percentile(latencies, 50)), 1)
        summary["latency_ms_p95"] = round(float(np.percentile(latencies, 95)), 1)
    summary["n"] = len(latencies)
    return summary


def run_eval(cases: list[EvalCase], agent: Agent, out_dir: str | Path | None = None,
             progress: bool = True) -> dict[str, Any]:
    per_case, latencies, tag_rows, tag_latencies = [], [], defaultdict(list), defaultdict(list)
    errors = []
    for case in tqdm(cases, desc="eval", unit="case", disable=not progress):
        start = time.perf_counter()
        try:
            result = agent(case)
        except Exception as exc:  # a failing case is scored, not fatal
            errors.append({"id": case.id, "error": f"{type(exc).__name__}: {exc}"})
            continue
        latency = (time.perf_counter() - start) * 1000
        metrics = case_metrics(case, result)
        top = (result.get("shortlist") or [{}])[0]
        per_case.append({"id": case.id, "tags": list(case.tags), "metrics": metrics,
                         "latency_ms": round(latency, 1),
                         "top": {"supplier_id": (top.get("supplier") or {}).get("supplier_id"),
                                 "product_id": top.get("product_id")}})
        latencies.append(latency)
        for tag in case.tags or ("untagged",):
            tag_rows[tag].append(metrics)
            tag_latencies[tag].append(latency)
    report = {
        "metrics": _summarise((row["metrics"] for row in per_case), latencies),
        "by_tag": {tag: _summarise(rows, tag_latencies[tag]) for tag, rows in
                   sorted(tag_rows.items())},
        "errors": errors,
        "cases": per_case,
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def format_table(report: dict[str, Any]) -> list[list[str]]:
    """Rows (metric, overall, per tag...) for printing."""
    tags = list(report["by_tag"])
    keys = [key for key in report["metrics"] if key != "n"]
    rows = [["metric", "all", *tags]]
    rows.append(["n", str(report["metrics"].get("n", 0)),
                 *[str(report["by_tag"][t].get("n", 0)) for t in tags]])
    for key in keys:
        cells = [report["metrics"].get(key), *[report["by_tag"][t].get(key) for t in tags]]
        rows.append([key, *["-" if value is None or (isinstance(value, float)
                                                     and math.isnan(value)) else f"{value:g}"
                            for value in cells]])
    return rows
