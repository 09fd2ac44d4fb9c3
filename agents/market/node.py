"""Market: the marketplace category the product sells in, and its price band, demand and
competition, every number cited to the listings it was computed from.

Reads ``state['product']`` and ``state['market']`` (and the seller's ``sale_price``, when given,
to place it among the category's listing prices); writes ``market_analysis`` and evidence. A
market without bundled marketplace data gets ``available: False`` and a warning, never a guess.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agents.context import Services
from agents.evidence import cite, cite_sale_price
from agents.market.tools import (
    BOUGHT_BUCKETS,
    PERCENTILE_METHOD,
    STAR_BUCKETS,
    AmazonListing,
    AmazonMarketData,
    segments,
)
from agents.market.text import category_words, without_boilerplate
from agents.market.trade import COST_CURRENCY
from agents.state import State

LISTINGS_SOURCE = "amazon_products.csv"
CATEGORIES_SOURCE = "amazon_categories.csv"
ALTERNATIVES = 3  # categories reported: the best and the runners-up
WEAK_MATCH = 0.3  # below this cosine similarity the category match is flagged as weak


def query_text(product: dict[str, Any], keep_boilerplate: bool = False) -> str:
    """The text matched against marketplace category names: the category path (without
    merchandising segments), the title without trade boilerplate (``agents.market.text``; kept
    with ``keep_boilerplate``, for the eval that measures the difference) and the seller's text."""
    title = str(product.get("title") or "")
    parts = [category_words(product.get("category")),
             title.strip() if keep_boilerplate else without_boilerplate(title),
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


def _cite_buckets(evidence: dict[str, dict[str, Any]], record_id: str, name: str,
                  counts: dict[str, int], buckets, input_ids: list[str]) -> list[str]:
    """One derived record per bucket count of a distribution."""
    ids = []
    for key, low, high in buckets:
        ids.append(cite(evidence, "derived", record_id, f"{name}.{key}", counts[key],
                        inputs=list(input_ids),
                        method=f"count of listings with value >= {low}"
                               + (f" and < {high}" if high is not None else "")))
    return ids


def _niches(evidence: dict[str, dict[str, Any]], market: str, cid: int,
            rows: list[AmazonListing], category_stars: float | None) -> list[dict[str, Any]]:
    """Sub-segments where demand per listing is at least the category's and the median rating
    is below the category's median: room for a better-rated product. Best demand first."""
    if not rows:
        return []
    mean_demand = round(sum(row.bought_in_last_month for row in rows) / len(rows), 1)
    bought_ids = [f"{LISTINGS_SOURCE}:{row.asin}:boughtInLastMonth" for row in rows]
    mean_id = cite(evidence, "derived", f"niches:{market}:{cid}", "category_demand_per_listing",
                   mean_demand, inputs=bought_ids,
                   method="mean of boughtInLastMonth over the category's listings, 1 decimal")
    stars_id = f"derived:competition:{market}:{cid}:median_stars"
    out = []
    for segment in segments(rows):
        if segment["demand_per_listing"] is None or segment["median_stars"] is None:
            continue
        if category_stars is None or segment["demand_per_listing"] < mean_demand \
                or segment["median_stars"] >= category_stars:
            continue
        members = segment["rows"]
        record = f"niche:{market}:{cid}:{segment['label']}"
        member_bought = [f"{LISTINGS_SOURCE}:{row.asin}:boughtInLastMonth" for row in members]
        member_stars = [f"{LISTINGS_SOURCE}:{row.asin}:stars" for row in members
                        if row.stars is not None]
        ids = [cite(evidence, "derived", record, "n", segment["n"], inputs=member_bought,
                    method="count of listings in the segment"),
               cite(evidence, "derived", record, "demand_per_listing",
                    segment["demand_per_listing"], inputs=member_bought,
                    method="mean boughtInLastMonth over the segment, 1 decimal"),
               cite(evidence, "derived", record, "median_stars", segment["median_stars"],
                    inputs=member_stars, method=f"numpy.percentile(method="
                                                f"{PERCENTILE_METHOD!r}), q=50"),
               mean_id, stars_id]
        if segment["kind"] == "price":  # the bracket's edges are the band's quartiles
            ids += [f"derived:price_band:{market}:{cid}:{key}" for key in ("p25", "median", "p75")]
        out.append({"kind": segment["kind"], "label": segment["label"], "n": segment["n"],
                    "demand_per_listing": segment["demand_per_listing"],
                    "median_stars": segment["median_stars"],
                    "category_demand_per_listing": mean_demand,
                    "category_median_stars": category_stars,
                    "asins": [row.asin for row in members], "evidence": ids})
    out.sort(key=lambda n: (-n["demand_per_listing"], n["label"]))
    return out[:5]


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
    rows = data.listings_of(cid)
    name_id = cite(evidence, CATEGORIES_SOURCE, str(cid), "category_name", best["name"])
    title_ids, _ = _cite_listings(evidence, rows, "title", lambda row: row.title)
    embedder = getattr(text_embedder, "name", "text")
    score_id = cite(evidence, "derived", f"category_match:{market}:{cid}", "score", best["score"],
                    inputs=[name_id, *title_ids], query=query,
                    name_score=best["name_score"], titles_score=best.get("titles_score"),
                    method=f"mean of two cosine similarities of {embedder} embeddings: the "
                           f"query's to the category name ({best['name_score']}) and to the "
                           f"mean of the category's {len(title_ids)} listing titles "
                           f"({best.get('titles_score')})")
    warnings = []
    if best["score"] < WEAK_MATCH:
        warnings.append(f"market: weak category match ({best['score']}) for {query!r}; "
                        f"the {data.label} figures may describe a different product")

    percentile = f"numpy.percentile(method={PERCENTILE_METHOD!r}), rounded to 2 decimals"

    price_ids, _ = _cite_listings(evidence, rows, "price", lambda row: row.price)
    band = data.price_band(cid)
    quantiles = {"min": 0, "p10": 10, "p25": 25, "median": 50, "p75": 75, "p90": 90, "max": 100}
    band_inputs = {key: price_ids for key in ("n", *quantiles)}
    band_methods = {"n": "count of listings with a price",
                    **{key: f"{percentile}, q={q}" for key, q in quantiles.items()}}
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

    demand["evidence"] += _cite_buckets(evidence, f"demand:{market}:{cid}", "bought_distribution",
                                        demand["bought_distribution"], BOUGHT_BUCKETS,
                                        bought_ids)

    review_ids, _ = _cite_listings(evidence, rows, "reviews", lambda row: row.reviews)
    star_ids, _ = _cite_listings(evidence, rows, "stars", lambda row: row.stars)
    competition = data.competition(cid)
    competition["evidence"] = _cite_stats(
        evidence, f"competition:{market}:{cid}", competition,
        {"n_listings": bought_ids, "n_with_reviews": review_ids, "median_reviews": review_ids,
         "n_rated": star_ids, "median_stars": star_ids,
         "best_seller_share": best_ids},
        {"n_listings": "count of listings", "n_with_reviews": "count of listings with reviews",
         "median_reviews": f"{percentile}, q=50", "n_rated": "count of rated listings",
         "median_stars": f"{percentile}, q=50",
         "best_seller_share": "listings with isBestSeller true / listings, 3 decimals"})
    competition["evidence"] += _cite_buckets(
        evidence, f"competition:{market}:{cid}", "rating_distribution",
        competition["rating_distribution"], STAR_BUCKETS, star_ids)
    niches = _niches(evidence, market, cid, rows, competition.get("median_stars"))

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
        "niches": niches,
    }
    return analysis, evidence, warnings


def price_position(evidence: dict[str, dict[str, Any]], market: str, category_id: int,
                   rows: list[AmazonListing], sale_price: float) -> dict[str, Any]:
    """Where the seller's own sale price sits among the category's listing prices: how many of
    the listings with a price are cheaper, cited to those prices and the request."""
    priced = [row for row in rows if row.price is not None]
    cheaper = sum(row.price < sale_price for row in priced)
    price_id = cite_sale_price(evidence, sale_price)
    cheaper_id = cite(evidence, "derived", f"price_position:{market}:{category_id}",
                      "listings_cheaper", cheaper,
                      inputs=[price_id, *(f"{LISTINGS_SOURCE}:{row.asin}:price" for row in priced)],
                      method="count of the category's listings priced below the seller's sale "
                             "price")
    return {"sale_price": float(sale_price), "listings_cheaper": cheaper, "n": len(priced),
            "evidence": [price_id, cheaper_id, f"derived:price_band:{market}:{category_id}:n"]}


def market_node(state: State, runtime: Runtime[Services]) -> dict[str, Any]:
    services = runtime.context
    market = (state.get("market") or "").strip().upper()
    data = (services.market_data or {}).get(market)
    if data is None:
        reason = f"no marketplace data for {market or 'an unnamed market'}"
        return {"market_analysis": {"market": market, "available": False, "reason": reason},
                "warnings": [f"market: {reason}; price band, demand and competition are unknown"]}
    analysis, evidence, warnings = analyse(data, market, state.get("product") or {},
                                           services.text_embedder)
    sale_price = state.get("sale_price")
    if sale_price is not None and analysis.get("available") and analysis["price_band"]["n"]:
        if data.currency != COST_CURRENCY:
            warnings.append(f"market: the seller's sale price is in {COST_CURRENCY} and the "
                            f"{data.label} prices in {data.currency}; no exchange rate is "
                            "bundled, so the price is not placed among the listings")
        else:
            cid = analysis["category"]["category_id"]
            analysis["sale_price_position"] = price_position(evidence, market, cid,
                                                             data.listings_of(cid), sale_price)
    update: dict[str, Any] = {"market_analysis": analysis, "evidence": evidence}
    if warnings:
        update["warnings"] = warnings
    return update
