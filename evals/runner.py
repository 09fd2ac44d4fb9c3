"""Score an agent on an eval set: run every case, compute metrics overall and per tag.

Product ranking of a result
    ``result["products"]`` when present: the ranked product groups
    ``[{"product_id", "score", "listing_ids", "supplier_ids", "source": {"supplier_id", "reasons"}}]``.
    Without it, the distinct ``product_id`` values of ``result["shortlist"]`` in shortlist order.
    A product id that appears twice keeps its first rank; ranks start at 1.

Metrics of one case (a metric is computed only over the cases that carry its ``expect`` key)
    ``product_recall@k`` (k = 1, 3, 5, 10), needs ``relevant_product_ids``:
        1 if any relevant product is among the first k products of the ranking, else 0.
    ``mrr``, needs ``relevant_product_ids``:
        1 / rank of the first relevant product in the ranking; 0 if none is in the list.
    ``ndcg@10``, needs ``relevant_product_ids``: binary relevance over the product ranking,
        DCG = sum over ranks i <= 10 holding a relevant product of 1 / log2(i + 1),
        ideal DCG = sum for i = 1 .. min(R, 10) of 1 / log2(i + 1), R = number of relevant products;
        ndcg@10 = DCG / ideal DCG.
    ``source_factory_precision@1``, needs ``source_supplier_id``:
        1 if the source named for the top-ranked product group (``products[0].source.supplier_id``;
        without ``products``, the supplier of the top shortlist candidate) equals the expected
        source supplier, else 0 (naming no source, or ranking nothing, scores 0).
    ``source_factory@1`` / ``source_factory@3``, needs ``source_supplier_id``:
        1 if the expected source supplier is the supplier of the first / of one of the first three
        shortlist candidates (listing level), else 0. Not computed when the case also lists that
        supplier in ``excluded_supplier_ids``: a constraint rules it out, so a right answer
        cannot show it (``excluded_supplier_rate`` scores that case).
    ``hs_heading@1``, needs ``hs_heading``: 1 if the first HS candidate's 4-digit heading equals it.
    ``hs_heading_top1`` / ``hs_heading_top3``, need ``hs_heading``: 1 if the heading is that of
        the first / of one of the first three HS candidates (``hs_heading_top1`` = ``hs_heading@1``).
    ``legal_act_recall``, needs ``required_legal_acts``: share of those acts among the compliance
        requirements of the result, names compared as ``compliance_recall`` compares them
        (``evals.compliance.normalise_act``: "Directive 2014/30/EU" is "2014/30/EU").
    ``unsupported_claims`` (every case): number of claims the grounding check could not support.
    ``factory_vs_trading_accuracy``, ``constraint_satisfaction``, ``groundedness``,
        ``price_band_error``: see ``evals.metrics``.
    ``compliance_precision`` / ``compliance_recall`` / ``compliance_f1``, need
        ``required_legal_acts`` (the complete list of acts): see ``evals.compliance``; added by
        ``run_eval`` beside ``case_metrics``, and averaged per target market in ``by_market``.

Aggregation (``metrics`` over all cases, ``by_tag`` per tag; a case without tags counts as
``untagged``)
    Each metric is the mean over the scored cases that carry it, or ``None`` when none does.
    ``latency_ms_p50`` / ``latency_ms_p95``: percentiles of the wall time of the agent call.
    ``n``: cases scored. ``n_errors``: cases whose agent call raised or whose result the metrics
    could not read (not an object, a ``shortlist`` that is not a list of objects...); they are
    listed in ``report["errors"]`` and left out of every mean, and the run goes on.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from evals.agent import Agent, case_request
from evals.compliance import (
    compliance_by_market,
    compliance_metrics,
    normalise_act,
    predicted_acts,
)
from evals.metrics import extra_metrics
from evals.sets import EvalCase
from evals.stats import bootstrap_interval

RECALL_AT = (1, 3, 5, 10)
NDCG_AT = 10
# every summary (overall and per tag) carries these keys, in this order
METRIC_KEYS = (
    *(f"product_recall@{k}" for k in RECALL_AT),
    "mrr",
    f"ndcg@{NDCG_AT}",
    "source_factory_precision@1",
    "source_factory@1",
    "source_factory@3",
    "hs_heading@1",
    "hs_heading_top1",
    "hs_heading_top3",
    "legal_act_recall",
    "unsupported_claims",
)
LATENCY_KEYS = ("latency_ms_p50", "latency_ms_p95")
# metrics that are not rates (a count, a relative error): no bootstrap interval for them, even on
# runs where every value happens to lie between 0 and 1
NOT_RATES = ("unsupported_claims", "price_band_error")


def ranked_products(result: dict[str, Any]) -> list[str]:
    """Distinct product ids, best first: from ``products`` when present, else from the shortlist."""
    if result.get("products") is not None:
        ids = [group.get("product_id") for group in result["products"]]
    else:
        ids = [item.get("product_id") for item in result.get("shortlist") or []]
    seen: list[str] = []
    for product_id in ids:
        if product_id and product_id not in seen:
            seen.append(product_id)
    return seen


def top_source(result: dict[str, Any]) -> str | None:
    """The source supplier named for the top-ranked product (top shortlist supplier as fallback)."""
    if result.get("products") is not None:
        groups = result["products"]
        return ((groups[0].get("source") or {}).get("supplier_id")) if groups else None
    shortlist = result.get("shortlist") or []
    return (shortlist[0].get("supplier") or {}).get("supplier_id") if shortlist else None


def ndcg(ranking: list[str], relevant: set[str], k: int = NDCG_AT) -> float:
    """Binary-relevance nDCG@k; the ideal ranking puts min(len(relevant), k) hits first."""
    dcg = sum(1.0 / math.log2(rank + 1)
              for rank, product in enumerate(ranking[:k], start=1) if product in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


def case_metrics(case: EvalCase, result: dict[str, Any]) -> dict[str, float]:
    """Metrics of one case; a metric appears only when the case carries its ``expect`` key."""
    out: dict[str, float] = {}
    expect = case.expect
    if expect.get("relevant_product_ids"):
        relevant = set(expect["relevant_product_ids"])
        products = ranked_products(result)
        for k in RECALL_AT:
            out[f"product_recall@{k}"] = float(any(p in relevant for p in products[:k]))
        ranks = [i for i, p in enumerate(products, 1) if p in relevant]
        out["mrr"] = 1.0 / ranks[0] if ranks else 0.0
        out[f"ndcg@{NDCG_AT}"] = ndcg(products, relevant)
    if expect.get("source_supplier_id"):
        wanted = expect["source_supplier_id"]
        out["source_factory_precision@1"] = float(top_source(result) == wanted)
        if wanted not in (expect.get("excluded_supplier_ids") or ()):
            suppliers = [(item.get("supplier") or {}).get("supplier_id")
                         for item in result.get("shortlist") or []]
            out["source_factory@1"] = float(suppliers[:1] == [wanted])
            out["source_factory@3"] = float(wanted in suppliers[:3])
    if expect.get("required_legal_acts"):
        acts = predicted_acts(result)
        wanted_acts = {normalise_act(act) for act in expect["required_legal_acts"]}
        out["legal_act_recall"] = len(wanted_acts & acts) / len(wanted_acts)
    if expect.get("hs_heading"):
        candidates = (result.get("product") or {}).get("hs_candidates") or []
        headings = [str(candidate["code"])[:4] for candidate in candidates]
        out["hs_heading@1"] = float(headings[:1] == [expect["hs_heading"]])
        out["hs_heading_top1"] = out["hs_heading@1"]
        out["hs_heading_top3"] = float(expect["hs_heading"] in headings[:3])
    grounding = result.get("grounding") or {}
    out["unsupported_claims"] = float(len(grounding.get("unsupported") or []))
    out.update(extra_metrics(case, result))
    return out


def _summarise(rows: Iterable[dict[str, float]], latencies: list[float],
               n_errors: int = 0) -> dict[str, float | int | None]:
    values: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        for key, value in row.items():
            values[key].append(value)
    summary: dict[str, float | int | None] = {}
    for key in (*METRIC_KEYS, *sorted(set(values) - set(METRIC_KEYS))):
        summary[key] = round(float(np.mean(values[key])), 4) if values.get(key) else None
    for key, q in zip(LATENCY_KEYS, (50, 95)):
        summary[key] = round(float(np.percentile(latencies, q)), 1) if latencies else None
    summary["n"] = len(latencies)
    summary["n_errors"] = n_errors
    return summary


def _intervals(rows: list[dict[str, float]]) -> dict[str, list[float] | None]:
    """95 % bootstrap intervals of the rate metrics (every metric but ``NOT_RATES``; each is a
    mean of per-case values between 0 and 1)."""
    values: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        for key, value in row.items():
            values[key].append(value)
    return {key: bootstrap_interval(vals) for key, vals in values.items()
            if vals and key not in NOT_RATES}


def _node_latency(timings: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    per_node: dict[str, list[float]] = defaultdict(list)
    for row in timings:
        for node, ms in row.items():
            if isinstance(ms, (int, float)):
                per_node[node].append(float(ms))
    return {node: {"p50": round(float(np.percentile(v, 50)), 1),
                   "p95": round(float(np.percentile(v, 95)), 1)} for node, v in per_node.items()}


class MalformedResult(ValueError):
    """An agent's result the metrics cannot read: the case fails with this message."""


def _scored(case: EvalCase, result: Any, latency: float) -> dict[str, Any]:
    """The per-case row of a result; ``MalformedResult`` when its shape breaks the contract
    where a metric reads it (the agent's fault, reported as the case's error)."""
    if not isinstance(result, dict):
        raise MalformedResult(f"the agent returned {type(result).__name__}, not a result "
                              "object (a dict)")
    for key in ("shortlist", "products"):
        items = result.get(key)
        if items is not None and not (isinstance(items, list)
                                      and all(isinstance(item, dict) for item in items)):
            raise MalformedResult(f"result.{key} must be a list of objects")
    try:
        metrics = {**case_metrics(case, result), **compliance_metrics(case, result)}
        products = ranked_products(result)
        top = (result.get("shortlist") or [{}])[0]
        return {"id": case.id, "tags": list(case.tags), "metrics": metrics,
                "latency_ms": round(latency, 1),
                "top": {"product_id": products[0] if products else None,
                        "source_supplier_id": top_source(result),
                        "supplier_id": (top.get("supplier") or {}).get("supplier_id")}}
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise MalformedResult(f"result does not follow the contract where the metrics read it "
                              f"({type(exc).__name__}: {exc})") from exc


def run_eval(cases: list[EvalCase], agent: Agent, out_dir: str | Path | None = None,
             progress: bool = True, agent_name: str | None = None,
             set_path: str | Path | None = None,
             provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run every case through ``agent`` (``agent(request) -> result``, see ``evals.agent``);
    return the report and write ``out_dir/report.json``, ``report.md`` and the plots.

    A case whose agent call raises, or whose result the metrics cannot read, is recorded in
    ``errors`` and the run goes on.
    """
    per_case, latencies, node_timings = [], [], []
    tag_rows, tag_latencies, tag_errors = defaultdict(list), defaultdict(list), defaultdict(int)
    errors = []
    for case in tqdm(cases, desc="eval", unit="case", disable=not progress):
        tags = case.tags or ("untagged",)
        start = time.perf_counter()
        try:
            result = agent(case_request(case))
            latency = (time.perf_counter() - start) * 1000
            row = _scored(case, result, latency)
        except Exception as exc:  # a failing case is recorded, not fatal
            errors.append({"id": case.id, "tags": list(case.tags),
                           "error": f"{type(exc).__name__}: {exc}"})
            for tag in tags:
                tag_errors[tag] += 1
            continue
        metrics = row["metrics"]
        per_case.append(row)
        latencies.append(latency)
        node_timings.append(result.get("timings") or {})
        for tag in tags:
            tag_rows[tag].append(metrics)
            tag_latencies[tag].append(latency)
    all_tags = sorted(set(tag_rows) | set(tag_errors))
    report = {
        "set": str(set_path) if set_path is not None else None,
        "agent": agent_name,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "case_count": len(cases),
        "metrics": _summarise((row["metrics"] for row in per_case), latencies, len(errors)),
        "by_tag": {tag: _summarise(tag_rows[tag], tag_latencies[tag], tag_errors[tag])
                   for tag in all_tags},
        "by_market": compliance_by_market(cases, per_case),
        "intervals": _intervals([row["metrics"] for row in per_case]),
        "by_tag_intervals": {tag: _intervals(tag_rows[tag]) for tag in all_tags},
        "node_latency_ms": _node_latency(node_timings),
        "provenance": provenance or {},
        "errors": errors,
        "cases": per_case,
    }
    if out_dir is not None:
        from evals.report import write_reports

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        write_reports(report, out)
    return report


def format_table(report: dict[str, Any]) -> list[list[str]]:
    """Rows (metric, overall, per tag...) for printing; a metric no case carries shows as "-"."""
    tags = list(report["by_tag"])
    counts = ("n", "n_errors")
    keys = [key for key in report["metrics"] if key not in counts]
    rows = [["metric", "all", *tags]]
    for key in counts:
        rows.append([key, str(report["metrics"].get(key, 0)),
                     *[str(report["by_tag"][t].get(key, 0)) for t in tags]])
    for key in keys:
        cells = [report["metrics"].get(key), *[report["by_tag"][t].get(key) for t in tags]]
        rows.append([key, *["-" if value is None or (isinstance(value, float)
                                                     and math.isnan(value)) else f"{value:g}"
                            for value in cells]])
    return rows
