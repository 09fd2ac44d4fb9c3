"""Metrics beyond ranking, computed by the evaluator from the result and the data, never from the
agent's own code:

``factory_vs_trading_accuracy``, needs ``source_supplier_id`` and ``relevant_product_ids``:
    over the shortlist candidates of a relevant product, the share whose ``is_source`` flag is
    right (true for the expected source supplier, false for every other supplier, typically
    trading companies reselling the factory's product).
``constraint_satisfaction``, needs ``constraints`` on the case: share of shortlist candidates
    that meet every constraint, checked against the candidate's own fields (``max_moq`` vs
    ``moq``; ``max_unit_price`` vs the unit price at the quantity, else the minimum price;
    ``supplier_kind``; ``capabilities``; ``min_on_time_rate``; ``min_margin_pct`` vs the
    candidate's ``margin.pct``). An unknown value fails.
``excluded_supplier_rate``, needs ``excluded_supplier_ids``: 1 if none of those suppliers is in
    the shortlist (a constraint case: the visually best supplier fails the constraint).
``groundedness`` (every case with claims): supported claims / all claims, the model's included.
``price_band_error`` (cases whose result names a marketplace category): relative error of the
    reported median price against the median recomputed here from the marketplace table
    (``data/market/amazon_us_2023`` for the US, and every table ``SOURCING_MARKET_DIRS`` names,
    each for the market its ``market.json`` states).
"""

from __future__ import annotations

import csv
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from evals.sets import EvalCase

MARKET_TABLES = {"US": Path(__file__).resolve().parents[1] / "data" / "market" / "amazon_us_2023"
                 / "amazon_products.csv"}


@lru_cache(maxsize=4)
def market_tables(dirs: str | None = None) -> dict[str, Path]:
    """Market code -> listings file: the bundled table and those of ``dirs`` (the value of
    ``SOURCING_MARKET_DIRS``: folders separated by ``os.pathsep``, each with a ``market.json``
    naming its market). Read from the data, not from the agent's code; a folder without a
    readable ``market.json`` is skipped (the agent refuses it at start-up)."""
    tables = dict(MARKET_TABLES)
    for folder in (dirs or "").split(os.pathsep):
        if not folder.strip():
            continue
        try:
            about = json.loads((Path(folder) / "market.json").read_text(encoding="utf-8"))
            tables[str(about["market"]).strip().upper()] = Path(folder) / "amazon_products.csv"
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return tables


@lru_cache(maxsize=4)
def _prices_by_category(table: Path) -> dict[str, list[float]]:
    prices: dict[str, list[float]] = {}
    with table.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                price = float(row["price"])
            except (TypeError, ValueError):
                continue
            if price > 0:
                prices.setdefault(str(row["category_id"]), []).append(price)
    return prices


def _meets(candidate: dict[str, Any], constraints: dict[str, Any]) -> bool:
    supplier = candidate.get("supplier") or {}
    price = candidate.get("price") or {}
    unit = price.get("unit_price_at_quantity")
    if unit is None:
        unit = price.get("min")
    checks = {
        "max_moq": lambda limit: candidate.get("moq") is not None and candidate["moq"] <= limit,
        "max_unit_price": lambda limit: unit is not None and unit <= limit,
        "supplier_kind": lambda kind: supplier.get("kind") == kind,
        "capabilities": lambda needed: set(needed if isinstance(needed, list)
                                           else str(needed).split("|"))
        <= set(supplier.get("capabilities") or []),
        "min_on_time_rate": lambda rate: supplier.get("on_time_rate") is not None
        and supplier["on_time_rate"] >= rate,
        "min_margin_pct": lambda floor: (candidate.get("margin") or {}).get("pct") is not None
        and candidate["margin"]["pct"] >= floor,
    }
    return all(check(constraints[key]) for key, check in checks.items()
               if constraints.get(key) not in (None, "", []))


def extra_metrics(case: EvalCase, result: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    expect = case.expect
    shortlist = result.get("shortlist") or []
    if expect.get("source_supplier_id") and expect.get("relevant_product_ids"):
        relevant = set(expect["relevant_product_ids"])
        judged = [bool(c.get("is_source")) == ((c.get("supplier") or {}).get("supplier_id")
                                              == expect["source_supplier_id"])
                  for c in shortlist if c.get("product_id") in relevant]
        if judged:
            out["factory_vs_trading_accuracy"] = float(np.mean(judged))
    if case.constraints and shortlist:
        out["constraint_satisfaction"] = float(np.mean([_meets(c, case.constraints)
                                                        for c in shortlist]))
    if expect.get("excluded_supplier_ids"):
        shown = {(c.get("supplier") or {}).get("supplier_id") for c in shortlist}
        out["excluded_supplier_rate"] = float(not shown & set(expect["excluded_supplier_ids"]))
    grounding = result.get("grounding") or {}
    model = grounding.get("model") or {}
    total = (grounding.get("total") or 0) + (model.get("total") or 0)
    if total:
        out["groundedness"] = ((grounding.get("supported") or 0)
                               + (model.get("supported") or 0)) / total
    market = result.get("market") or {}
    category = (market.get("category") or {}).get("category_id")
    reported = (market.get("price_band") or {}).get("median")
    table = market_tables(os.environ.get("SOURCING_MARKET_DIRS")).get(
        str(market.get("market") or "").upper())
    if category is not None and reported is not None and table is not None and table.is_file():
        prices = _prices_by_category(table).get(str(category))
        if prices:
            true = float(np.median(prices))
            out["price_band_error"] = abs(float(reported) - true) / true
    return out
