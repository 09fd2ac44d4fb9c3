"""How often the market agent picks a right marketplace category for a catalog's products.

The market agent matches a product's words (category path, title, seller text; see
``agents.market.node.query_text``) against the marketplace's category names, and every figure of
its analysis (price band, demand, competition, niches) comes from the category it picks. This eval
asks it once per catalog listing, with the words the intake agent would hand it for a photo
matched to that listing, and checks the pick against a hand-labelled gold file: per product, the
marketplace categories a seller could rightly list it in (``evals/sets/market_gold``).

Four variants over the same listings, the two changes that made the match what it is, each
with and without the other:

- ``as_shipped``: as runs match: the title without trade boilerplate (``agents.market.text``),
  scored against each category's name and the mean of its listing titles;
- ``boilerplate_kept``: the same with the title as the catalog wrote it;
- ``names_only``: boilerplate removed, scored against the category names alone;
- ``names_only_boilerplate_kept``: both undone, as the agent matched before.

Each gives top-1 accuracy over listings (with a bootstrap interval) and over products (a product
counts as right when most of its listings are), and the confusions: which wrong categories were
picked, how often.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.market.node import query_text
from evals.stats import rate_with_interval

# variant -> (title kept as written, listing titles used)
VARIANTS = {"as_shipped": (False, True), "boilerplate_kept": (True, True),
            "names_only": (False, False), "names_only_boilerplate_kept": (True, False)}
SEPARATOR = " | "  # between category names in the gold file (names hold commas and "&")


@dataclass(frozen=True)
class MarketGold:
    product_id: str
    categories: frozenset[str]
    reason: str


def load_market_gold(path: str | Path, known: Iterable[str] | None = None
                     ) -> dict[str, MarketGold]:
    """``product_id -> MarketGold`` from a CSV of ``product_id,categories,reason``
    (``categories`` joined by `` | ``). With ``known`` (the marketplace's category names), a
    name it does not hold is an error naming the line."""
    path = Path(path)
    names = set(known) if known is not None else None
    gold: dict[str, MarketGold] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"product_id", "categories"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            product_id = (row["product_id"] or "").strip()
            categories = frozenset(name.strip() for name in (row["categories"] or "")
                                   .split(SEPARATOR.strip()) if name.strip())
            if not product_id or not categories:
                raise ValueError(f"{path}:{line}: a product_id and at least one category "
                                 "are required")
            if product_id in gold:
                raise ValueError(f"{path}:{line}: product {product_id} is labelled twice")
            unknown = sorted(categories - names) if names is not None else []
            if unknown:
                raise ValueError(f"{path}:{line}: not a category of the marketplace data: "
                                 f"{', '.join(unknown)}")
            gold[product_id] = MarketGold(product_id, categories,
                                          (row.get("reason") or "").strip())
    if not gold:
        raise ValueError(f"{path}: no labelled products")
    return gold


def market_category_eval(data: Any, embedder: Any, listings: Iterable[Any],
                         gold: dict[str, MarketGold]) -> dict[str, Any]:
    """Every variant's accuracy over the ``listings`` (objects with ``listing_id``,
    ``product_id``, ``category`` and ``title``) whose product ``gold`` labels."""
    chosen = [listing for listing in listings if listing.product_id in gold]
    if not chosen:
        raise ValueError("no listing of the catalog belongs to a product the gold file labels")
    picks: dict[str, dict[str, str]] = {variant: {} for variant in VARIANTS}
    # (query, titles used) -> the category picked: the same words are matched once
    best: dict[tuple[str, bool], str] = {}
    for variant, (keep_boilerplate, use_titles) in VARIANTS.items():
        queries = {listing.listing_id: query_text(
            {"category": listing.category, "title": listing.title},
            keep_boilerplate=keep_boilerplate) for listing in chosen}
        for query in dict.fromkeys(queries.values()):
            if (query, use_titles) not in best:
                matches = data.match_category(embedder, query, top_n=1, use_titles=use_titles)
                best[query, use_titles] = matches[0]["name"] if matches else ""
        picks[variant] = {listing_id: best[query, use_titles]
                          for listing_id, query in queries.items()}
    metrics: dict[str, Any] = {}
    confusions: dict[str, list[dict[str, Any]]] = {}
    for variant in VARIANTS:
        right = [float(picks[variant][listing.listing_id] in gold[listing.product_id].categories)
                 for listing in chosen]
        by_product: dict[str, list[float]] = {}
        for listing, ok in zip(chosen, right, strict=True):
            by_product.setdefault(listing.product_id, []).append(ok)
        products = [float(sum(oks) > len(oks) / 2) for oks in by_product.values()]
        metrics[f"{variant}_listings_top1"] = rate_with_interval(right)
        metrics[f"{variant}_products_top1"] = rate_with_interval(products)
        wrong = Counter((listing.category, picks[variant][listing.listing_id])
                        for listing, ok in zip(chosen, right, strict=True) if not ok)
        confusions[variant] = [{"catalog_category": category, "picked": picked, "listings": n}
                               for (category, picked), n in wrong.most_common()]
    return {"n_listings": len(chosen), "n_products": len({x.product_id for x in chosen}),
            "metrics": metrics, "confusions": confusions,
            "listings": [{"listing_id": x.listing_id, "product_id": x.product_id,
                          **{variant: picks[variant][x.listing_id] for variant in VARIANTS}}
                         for x in chosen]}
