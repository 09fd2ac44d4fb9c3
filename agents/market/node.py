"""Market: the marketplace category the product sells in, and its price band, demand and
competition, every number cited to the listings it was computed from.

Reads ``state['product']`` and ``state['market']``; writes ``market_analysis`` and evidence. A
market without bundled marketplace data gets ``available: False`` and a warning, never a guess.
"""

from __future__ import annotations

import re
from typing import Any

from langgraph.runtime import Runtime

from agents.context import Services
from agents.evidence import cite
from agents.market.tools import PERCENTILE_METHOD, AmazonListing, AmazonMarketData
from agents.state import State

LISTINGS_SOURCE = "amazon_products.csv"
CATEGORIES_SOURCE = "amazon_categories.csv"
ALTERNATIVES = 3  # categories reported: the best and the runners-up
WEAK_MATCH = 0.3  # below this cosine similarity the category match is flagged as weak
# Catalog paths carry merchandising segments ("Collections/...", "Promotions/...") that say
# nothing about the product; the query keeps what comes before them.
_MERCHANDISING = re.compile(r"/(collections|promotions)(/.*)?$", re.IGNORECASE)


def query_text(product: dict[str, Any]) -> str:
    """The text matched against marketplace category names: category path, title, seller text."""
    category = _MERCHANDISING.sub("", str(product.get("category") or ""))
    category = re.sub(r"\s*(->|/|>)\s*", " ", category).strip()
    parts = [category, str(product.get("title") or "").strip(),
             str(product.get("text") or "").strip()]
    return " ".join(part for part in parts if part)


def _cite_listings(evidence: dict[str, dict[str, Any]], rows: list[AmazonListing],
                   column: str, value_of) -> tuple[list[str], list[Any]]:
    """Cite ``column`` of each listing whose value is stated; return (evidence ids, values)."""
    ids, values = [], []
    for row in rows:
        value = value_of(row)
        if value is None:
            continue
        ids.append(cite(evidence, LISTINGS_SOURCE, row.asin, column, value,
                        category_id=row.category_id, line=row.line))
        values.append(value)
    return ids, values


def _cite_stats(evidence: dict[str, dict[str, Any]], record_id: str, stats: dict[str, Any],
                inputs: dict[str, list[str]], methods: dict[str, str]) -> list[str]:
    """One derived evidence record per statistic that has a value."""
    ids = []
    for key, value in stats.items():
        if key not in inputs or value is None:
            continue
        ids.append(cite(evidence, "derived", record_id, key, value, inputs=list(inputs[key]),
                        method=methods[key]))
    return ids


def analyse(data: AmazonMarketData, market: str, product: dict[str, Any], text_embedder: Any
            ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[str]]:
    """``(market_analysis, evidence, warnings)`` for one product in a market with data."""
    evidence: dict[str, dict[str, Any]] = {}
    query = query_text(product)
    if not query:
        reason = "no category, title or description to match a marketplace category"
        return ({"market": market, "available": False, "source": data.source, "reason": reason},
                evidence, [f"market: {reason}"])
    matches = data.match_category(text_embedder, query, top_n=ALTERNATIVES)
    if not matches:
        reason = "the marketplace data holds no categories"
        return ({"market": market, "available": False, "source": data.source, "reason": reason},
                evidence, [f"market: {reason}"])
    best = matches[0]
    cid = best["category_id"]
    name_id = cite(evidence, CATEGORIES_SOURCE, str(cid), "category_name", best["name"])
    score_id = cite(evidence, "derived", f"category_match:{market}:{cid}", "score", best["score"],
                    inputs=[name_id], query=query,
                    method=f"cosine similarity of {getattr(text_embedder, 'name', 'text')} "
                           f"embeddings of the query and the category name")
    warnings = []
    if best["score"] < WEAK_MATCH:
        warnings.append(f"market: weak category match ({best['score']}) for {query!r}; "
                        f"the {data.label} figures may describe a different product")

    rows = data.listings_of(cid)
    percentile = f"numpy.percentile(method={PERCENTILE_METHOD!r}), rounded to 2 decimals"

    price_ids, _ = _cite_listings(evidence, rows, "price", lambda row: row.price)
    band = data.price_band(cid)
    band_inputs = {key: price_ids for key in ("n", "min", "p25", "median", "p75", "max")}
    band_methods = {"n": "count of listings with a price", "min": f"{percentile}, q=0",
                    "p25": f"{percentile}, q=25", "median": f"{percentile}, q=50",
                    "p75": f"{percentile}, q=75", "max": f"{percentile}, q=100"}
    band["evidence"] = _cite_stats(evidence, f"price_band:{market}:{cid}", band, band_inputs,
                                   band_methods)

    bought_ids, _ = _cite_listings(evidence, rows, "boughtInLastMonth",
                                   lambda row: row.bought_in_last_month)
    best_ids, _ = _cite_listings(evidence, rows, "isBestSeller", lambda row: row.is_best_seller)
    demand = data.demand(cid)
    demand["evidence"] = _cite_stats(
        evidence, f"demand:{market}:{cid}", demand,
        {"n": bought_ids, "bought_in_last_month_median": bought_ids,
         "bought_in_last_month_p75": bought_ids, "best_sellers": best_ids},
        {"n": "count of listings", "bought_in_last_month_median": f"{percentile}, q=50",
         "bought_in_last_month_p75": f"{percentile}, q=75",
         "best_sellers": "count of listings with isBestSeller true"})

    review_ids, _ = _cite_listings(evidence, rows, "reviews", lambda row: row.reviews)
    star_ids, _ = _cite_listings(evidence, rows, "stars", lambda row: row.stars)
    competition = data.competition(cid)
    competition["evidence"] = _cite_stats(
        evidence, f"competition:{market}:{cid}", competition,
        {"n_listings": bought_ids, "n_with_reviews": review_ids, "median_reviews": review_ids,
         "n_rated": star_ids, "median_stars": star_ids},
        {"n_listings": "count of listings", "n_with_reviews": "count of listings with reviews",
         "median_reviews": f"{percentile}, q=50", "n_rated": "count of rated listings",
         "median_stars": f"{percentile}, q=50"})

    analysis = {
        "market": market,
        "available": True,
        "source": data.source,
        "query": query,
        "category": {**best, "evidence": [name_id, score_id]},
        "alternatives": matches[1:],
        "price_band": band,
        "demand": demand,
        "competition": competition,
    }
    return analysis, evidence, warnings


def market_node(state: State, runtime: Runtime[Services]) -> dict[str, Any]:
    services = runtime.context
    market = (state.get("market") or "").strip().upper()
    data = (services.market_data or {}).get(market)
    if data is None:
        reason = f"no marketplace data bundled for {market or 'an unnamed market'}"
        return {"market_analysis": {"market": market, "available": False, "reason": reason},
                "warnings": [f"market: {reason}; price band, demand and competition are unknown"]}
    analysis, evidence, warnings = analyse(data, market, state.get("product") or {},
                                           services.text_embedder)
    update: dict[str, Any] = {"market_analysis": analysis, "evidence": evidence}
    if warnings:
        update["warnings"] = warnings
    return update
