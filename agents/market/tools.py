"""Marketplace data for the market agent: the bundled Amazon US 2023 sample, and any other
marketplace table in the same format.

A marketplace table is a folder holding ``amazon_categories.csv``, ``amazon_products.csv`` (the
columns of the public "Amazon Products 2023" data sets, which exist for several Amazon
marketplaces) and ``market.json``, which says what the table describes::

    {"market": "UK", "label": "Amazon UK 2023", "currency": "GBP"}

``market`` is the market code runs name (one with compliance rules: an unknown code is refused
with the list of known ones, which ``GET /v1/markets`` also gives), ``currency`` the ISO 4217
code of the table's prices. ``load_market_tables`` reads several such folders (setting
``SOURCING_MARKET_DIRS``), one per market.

``amazon_categories.csv`` names 248 categories; ``amazon_products.csv`` holds 20 listings per
category (ASIN, title, stars, reviews, price, list price, best-seller flag, bought in the last
month). That is a sample of each category, not the full market: statistics over it describe those
listings only, and say how many they rest on.

In the source data a value of 0 stands for "not stated": a price of 0 is a missing price, 0 stars
means no rating shown and 0 reviews with a rating is a missing count. ``boughtInLastMonth`` is kept
as given: Amazon shows "N+ bought in past month" only from 50 up, so 0 means under 50 or not shown,
and the figures are lower bounds.

``AmazonMarketData.load`` refuses, naming the file and line, what would otherwise pass as data: a
negative or non-finite price, stars outside 0..5, a negative count, a repeated ASIN (ASINs are
evidence ids) or category id, a listing of a category the categories file lacks, and a products
file with no listings at all.

A product is matched to a category by two cosine similarities of text embeddings, averaged: to
the category's name, and to the mean embedding of the category's listing titles (what the
marketplace itself sells under that name; "Ironing Products" holds garment steamers, which its
name does not say). The title means of the bundled table ship beside it
(``title-centroids.<embedder>.npz``, written by ``python -m agents.market.tools FOLDER``); for
another table they are computed at its first use (seconds per thousand titles) and kept in the
cache folder.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from retrieval.embedders.base import TextEmbedder

CATEGORIES_FILE = "amazon_categories.csv"
PRODUCTS_FILE = "amazon_products.csv"
MARKET_FILE = "market.json"
_CURRENCY = re.compile(r"^[A-Z]{3}$")
PERCENTILE_METHOD = "linear"
PRICE_QUANTILES = (("min", 0), ("p10", 10), ("p25", 25), ("median", 50), ("p75", 75), ("p90", 90),
                   ("max", 100))
# units bought in the last month (Amazon shows "N+ bought" from 50 up; 0 = under 50 or not shown)
BOUGHT_BUCKETS = (("under_50", 0, 50), ("50_99", 50, 100), ("100_499", 100, 500),
                  ("500_999", 500, 1000), ("1000_plus", 1000, None))
STAR_BUCKETS = (("under_3.5", 0, 3.5), ("3.5_3.9", 3.5, 4.0), ("4.0_4.4", 4.0, 4.5),
                ("4.5_plus", 4.5, None))


def bucket_counts(values: Sequence[float], buckets) -> dict[str, int]:
    """How many values fall in each ``(name, low, high)`` bucket (low inclusive)."""
    return {name: sum(1 for v in values if v >= low and (high is None or v < high))
            for name, low, high in buckets}


class MarketTableError(ValueError):
    """A marketplace table that cannot be used: the message names the file and the problem."""


@dataclass(frozen=True)
class AmazonListing:
    """One row of ``amazon_products.csv``; ``None`` where the source holds 0 for "not stated"."""

    asin: str
    title: str
    category_id: int
    price: float | None
    list_price: float | None
    stars: float | None
    reviews: int | None
    is_best_seller: bool
    bought_in_last_month: int
    line: int

    def as_record(self) -> dict[str, Any]:
        return {"asin": self.asin, "title": self.title, "category_id": self.category_id,
                "price": self.price, "list_price": self.list_price, "stars": self.stars,
                "reviews": self.reviews, "is_best_seller": self.is_best_seller,
                "bought_in_last_month": self.bought_in_last_month}


def _stat(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values, dtype=np.float64), q,
                                     method=PERCENTILE_METHOD)), 2)


def _number(text: str, field: str) -> float:
    """``text`` as a finite number (empty is 0, "not stated"): ``inf`` or NaN would reach the
    statistics and the JSON answers, which cannot carry them."""
    value = float(text) if text.strip() else 0.0
    if not math.isfinite(value):
        raise ValueError(f"{field} {text.strip()!r} is not a finite number")
    return value


def _price(text: str, field: str) -> float | None:
    """A price, ``None`` where the source holds 0 or nothing ("not stated"); a negative price is
    refused rather than taken as missing, since it says the table is broken, not silent."""
    value = _number(text, field)
    if value < 0:
        raise ValueError(f"{field} {value:g} is negative")
    return value if value > 0 else None


def _stars(text: str) -> float | None:
    """A star rating in 0..5, ``None`` for 0 (no rating shown)."""
    value = _number(text, "stars")
    if not 0 <= value <= 5:
        raise ValueError(f"stars {value:g} is outside 0..5")
    return value if value > 0 else None


def _count(text: str, field: str) -> int:
    """A count of reviews or units: finite and not negative."""
    value = _number(text, field)
    if value < 0:
        raise ValueError(f"{field} {value:g} is negative")
    return int(value)


log = logging.getLogger(__name__)

TITLE_CENTROIDS = "title-centroids"  # the shipped title means: <table>/title-centroids.<embedder>.npz


class AmazonMarketData:
    """The Amazon sample in memory, with category matching and per-category statistics."""

    def __init__(self, categories: dict[int, str], listings: list[AmazonListing],
                 label: str = "Amazon US 2023", folder: Path | None = None,
                 cache_dir: Path | None = None, market: str = "US",
                 currency: str = "USD") -> None:
        self.categories = categories
        self.listings = listings
        self.label = label
        self.market = market
        self.currency = currency  # of every price in the table
        self.folder = folder
        # where the category names' embeddings are kept between start-ups
        # (retrieval.vector_cache); None: embedded at every start-up
        self.cache_dir = cache_dir
        self._by_category: dict[int, list[AmazonListing]] = {cid: [] for cid in categories}
        for listing in listings:
            self._by_category.setdefault(listing.category_id, []).append(listing)
        self._category_ids = list(categories)
        self._category_vectors: dict[str, np.ndarray] = {}
        self._title_centroids: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, folder: str | Path,
             cache_dir: str | Path | None = None) -> AmazonMarketData:
        """Read ``market.json`` and both CSV files from ``folder``; a bad row raises
        ``MarketTableError`` naming the file and line. ``cache_dir``: see ``cache_dir`` in the
        constructor."""
        folder = Path(folder)
        if not folder.is_dir():
            raise MarketTableError(f"marketplace table folder not found: {folder}")
        about = read_market_file(folder / MARKET_FILE)
        categories: dict[int, str] = {}
        category_lines: dict[int, int] = {}
        path = folder / CATEGORIES_FILE
        with path.open(newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    category_id = int(row["id"])
                    if category_id in category_lines:
                        raise ValueError(f"id {category_id} repeats line "
                                         f"{category_lines[category_id]}")
                    categories[category_id] = row["category_name"].strip()
                    category_lines[category_id] = line
                except (KeyError, TypeError, ValueError, AttributeError) as error:
                    raise MarketTableError(f"{path}: line {line}: bad category row: "
                                           f"{error}") from None
        listings: list[AmazonListing] = []
        asin_lines: dict[str, int] = {}  # ASINs are evidence ids: one row each
        path = folder / PRODUCTS_FILE
        with path.open(newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    asin = row["asin"].strip()
                    if not asin:
                        raise ValueError("asin is empty")
                    if asin in asin_lines:
                        raise ValueError(f"asin {asin} repeats line {asin_lines[asin]}")
                    category_id = int(row["category_id"])
                    if category_id not in categories:
                        raise ValueError(f"category_id {category_id} is not in "
                                         f"{CATEGORIES_FILE}")
                    reviews = _count(row["reviews"], "reviews")
                    listings.append(AmazonListing(
                        asin=asin,
                        title=row["title"].strip(),
                        category_id=category_id,
                        price=_price(row["price"], "price"),
                        list_price=_price(row["listPrice"], "listPrice"),
                        stars=_stars(row["stars"]),
                        reviews=reviews if reviews > 0 else None,
                        is_best_seller=row["isBestSeller"].strip().lower() == "true",
                        bought_in_last_month=_count(row["boughtInLastMonth"],
                                                    "boughtInLastMonth"),
                        line=line,
                    ))
                    asin_lines[asin] = line
                except (KeyError, TypeError, ValueError, AttributeError) as error:
                    raise MarketTableError(f"{path}: line {line}: bad listing row: "
                                           f"{error}") from None
        if not listings:
            raise MarketTableError(f"{path}: no listings (a header alone gives no market "
                                   "figures)")
        return cls(categories, listings, label=about["label"], folder=folder,
                   cache_dir=Path(cache_dir) if cache_dir is not None else None,
                   market=about["market"], currency=about["currency"])

    @property
    def listings_per_category(self) -> int:
        """The most common number of listings per category (20 in the bundled sample)."""
        counts = [len(rows) for rows in self._by_category.values() if rows]
        return max(set(counts), key=counts.count) if counts else 0

    @property
    def source(self) -> str:
        return f"{self.label} sample ({self.listings_per_category} listings per category)"

    # -- category matching ----------------------------------------------------------------------

    def _vectors(self, text_embedder: TextEmbedder) -> np.ndarray:
        name = getattr(text_embedder, "name", type(text_embedder).__name__)
        if name not in self._category_vectors:
            from retrieval.vector_cache import cached_text_vectors

            names = [self.categories[cid] for cid in self._category_ids]
            label = "categories-" + (self.folder.name if self.folder else "market")
            self._category_vectors[name] = cached_text_vectors(text_embedder, names,
                                                               self.cache_dir, label)
        return self._category_vectors[name]

    def _titles_key(self, embedder_name: str) -> str:
        from retrieval.vector_cache import text_key

        return text_key(embedder_name, [f"{cid}\x1f{row.title}" for cid in self._category_ids
                                        for row in self._by_category.get(cid, [])])

    def _compute_title_centroids(self, text_embedder: TextEmbedder) -> np.ndarray:
        """Per category (in ``_category_ids`` order), the normalised mean embedding of its
        listing titles; zeros for a category without listings."""
        titles = [row.title for cid in self._category_ids
                  for row in self._by_category.get(cid, [])]
        log.info("embedding the %d listing titles of %s once, to match products to its "
                 "categories (about 10 s a thousand on 2 cores; kept in %s)", len(titles),
                 self.label, self.cache_dir or "memory only")
        vectors = np.asarray(text_embedder.embed_texts(titles), dtype=np.float32)
        centroids = np.zeros((len(self._category_ids), vectors.shape[1]), dtype=np.float32)
        start = 0
        for i, cid in enumerate(self._category_ids):
            count = len(self._by_category.get(cid, []))
            if count:
                mean = vectors[start:start + count].mean(axis=0)
                centroids[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
            start += count
        return centroids

    def title_centroids(self, text_embedder: TextEmbedder) -> np.ndarray:
        """The categories' listing-title means (see the module docstring), read from the copy
        shipped beside the table or the cache when they hold them for these titles and this
        embedder, else computed (and cached)."""
        name = getattr(text_embedder, "name", type(text_embedder).__name__)
        if name not in self._title_centroids:
            from retrieval.vector_cache import cache_path, cached_vectors

            label = "title-centroids-" + (self.folder.name if self.folder else "market")
            shipped = cache_path(self.folder, TITLE_CENTROIDS, name) if self.folder else None
            self._title_centroids[name] = cached_vectors(
                self._titles_key(name), lambda: self._compute_title_centroids(text_embedder),
                self.cache_dir, label, name, shipped=shipped)
        return self._title_centroids[name]

    def write_title_centroids(self, text_embedder: TextEmbedder) -> Path:
        """Compute the title means and write them beside the table, where ``title_centroids``
        reads them first (done once for the bundled table)."""
        from retrieval.vector_cache import cache_path, write_vectors

        if self.folder is None:
            raise ValueError("the table was not loaded from a folder")
        name = getattr(text_embedder, "name", type(text_embedder).__name__)
        path = cache_path(self.folder, TITLE_CENTROIDS, name)
        centroids = self._compute_title_centroids(text_embedder)
        write_vectors(path, centroids, self._titles_key(name))
        self._title_centroids[name] = centroids
        return path

    def match_category(self, text_embedder: TextEmbedder, query: str, top_n: int = 3,
                       use_titles: bool = True) -> list[dict[str, Any]]:
        """The ``top_n`` categories nearest to ``query``, best first: ``score`` is the mean of
        the query's cosine similarity to the category's name (``name_score``) and to the mean
        of its listing titles (``titles_score``); with ``use_titles=False`` (for the eval that
        measures the difference), the name's alone. Embeddings are computed once per
        embedder."""
        if not query.strip() or not self._category_ids:
            return []
        query_vector = np.asarray(text_embedder.embed_texts([query]), dtype=np.float32)[0]
        name_scores = self._vectors(text_embedder) @ query_vector
        title_scores = self.title_centroids(text_embedder) @ query_vector if use_titles \
            else None
        scores = name_scores if title_scores is None else (name_scores + title_scores) / 2
        order = np.argsort(-scores, kind="stable")[:top_n]
        matches = []
        for i in order:
            cid = self._category_ids[i]
            match = {"category_id": cid, "name": self.categories[cid],
                     "score": round(float(scores[i]), 4),
                     "name_score": round(float(name_scores[i]), 4)}
            if title_scores is not None:
                match["titles_score"] = round(float(title_scores[i]), 4)
            matches.append(match)
        return matches

    # -- statistics -------------------------------------------------------------------------------

    def listings_of(self, category_id: int | str) -> list[AmazonListing]:
        """The listings of one category as typed rows, in file order."""
        return list(self._by_category.get(int(category_id), []))

    def records(self, category_id: int | str) -> list[dict[str, Any]]:
        """The listings of one category as dicts (``None`` for values not stated), in file order."""
        return [row.as_record() for row in self.listings_of(category_id)]

    def price_band(self, category_id: int | str) -> dict[str, Any]:
        """Price percentiles (in the table's currency) over the category's listings with a
        price; ``n`` of them."""
        prices = [row.price for row in self.listings_of(category_id) if row.price is not None]
        band: dict[str, Any] = {"currency": self.currency, "n": len(prices)}
        for key, q in PRICE_QUANTILES:
            band[key] = _stat(prices, q) if prices else None
        return band

    def demand(self, category_id: int | str) -> dict[str, Any]:
        """Units bought in the last month (lower bounds, see the module note) and the number of
        best-seller badges, over the category's listings. The table holds 20 listings per
        category: a sample, not the full market."""
        rows = self.listings_of(category_id)
        bought = [row.bought_in_last_month for row in rows]
        return {
            "n": len(rows),
            "bought_in_last_month_median": _stat(bought, 50) if bought else None,
            "bought_in_last_month_p75": _stat(bought, 75) if bought else None,
            "best_sellers": sum(row.is_best_seller for row in rows),
            "bought_distribution": bucket_counts(bought, BOUGHT_BUCKETS),
        }

    def competition(self, category_id: int | str) -> dict[str, Any]:
        """How crowded and how well rated the category's listings are: the listing count, the
        median review count over listings that state one and the median star rating over rated
        listings. The table holds 20 listings per category: a sample, not the full market."""
        rows = self.listings_of(category_id)
        reviews = [row.reviews for row in rows if row.reviews is not None]
        stars = [row.stars for row in rows if row.stars is not None]
        return {
            "n_listings": len(rows),
            "n_with_reviews": len(reviews),
            "median_reviews": _stat(reviews, 50) if reviews else None,
            "n_rated": len(stars),
            "median_stars": _stat(stars, 50) if stars else None,
            "best_seller_share": round(sum(r.is_best_seller for r in rows) / len(rows), 3)
            if rows else None,
            "rating_distribution": bucket_counts(stars, STAR_BUCKETS),
        }


def read_market_file(path: Path) -> dict[str, str]:
    """``market.json`` of a marketplace table: ``market``, ``label`` and ``currency``, checked;
    ``MarketTableError`` naming the file and the problem."""
    if not path.is_file():
        raise MarketTableError(f"{path}: missing; a marketplace table names its market, label "
                               'and currency there, e.g. {"market": "UK", "label": '
                               '"Amazon UK 2023", "currency": "GBP"}')
    try:
        about = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MarketTableError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(about, dict):
        raise MarketTableError(f"{path}: must hold a JSON object")
    out = {}
    for key in ("market", "label", "currency"):
        value = about.get(key)
        if not isinstance(value, str) or not value.strip():
            raise MarketTableError(f"{path}: field {key!r} must be a non-empty string")
        out[key] = value.strip()
    out["market"] = out["market"].upper()
    if not _CURRENCY.match(out["currency"]):
        raise MarketTableError(f"{path}: field 'currency' must be an ISO 4217 code such as "
                               f"USD or GBP, not {out['currency']!r}")
    return out


def load_market_tables(folders: Sequence[str | Path], canonical: Callable[[str], str],
                       cache_dir: str | Path | None = None) -> dict[str, AmazonMarketData]:
    """The marketplace tables under ``folders``, keyed by market code. ``canonical`` maps a
    table's code to the one runs carry (a member state to its union, as the compliance rules
    answer it) and raises ``ValueError`` for a market without rules. Two tables for one market
    are refused: which one a run used would depend on the order of a setting. Any problem
    raises ``MarketTableError`` naming the folder or file."""
    tables: dict[str, AmazonMarketData] = {}
    for folder in folders:
        table = AmazonMarketData.load(folder, cache_dir=cache_dir)
        try:
            code = canonical(table.market)
        except ValueError as error:  # no compliance rules for it
            raise MarketTableError(f"{Path(folder) / MARKET_FILE}: {error}") from None
        if code in tables:
            raise MarketTableError(f"two marketplace tables for market {code}: "
                                   f"{tables[code].folder} and {folder}")
        table.market = code
        tables[code] = table
    return tables


NICHE_MIN_LISTINGS = 3  # a segment needs at least this many listings to be reported
_STOPWORDS = frozenset("""a an and or the for with of in on to by from at as is are be this that
your you our men women mens womens s x pack set new 1 2 3 4 5 6 7 8 9 10 inch""".split())


def segments(rows: Sequence[AmazonListing]) -> list[dict[str, Any]]:
    """Sub-segments of a category's listings: price brackets (below p25, p25 to median, median to
    p75, above p75) and title keywords found in at least ``NICHE_MIN_LISTINGS`` titles. Each with
    its listings' ASINs, demand per listing (mean bought-in-last-month) and median stars."""
    out: list[dict[str, Any]] = []
    priced = [row for row in rows if row.price is not None]
    if len(priced) >= 2 * NICHE_MIN_LISTINGS:
        prices = [row.price for row in priced]
        edges = [_stat(prices, q) for q in (25, 50, 75)]
        bounds = [(None, edges[0]), (edges[0], edges[1]), (edges[1], edges[2]), (edges[2], None)]
        for low, high in bounds:
            members = [row for row in priced if (low is None or row.price > low)
                       and (high is None or row.price <= high)]
            label = (f"price up to {high}" if low is None else
                     f"price over {low}" if high is None else f"price {low} to {high}")
            out.append({"kind": "price", "label": label, "low": low, "high": high,
                        "rows": members})
    counts: dict[str, list[AmazonListing]] = {}
    for row in rows:
        words = {w for w in re.findall(r"[a-z][a-z0-9-]+", row.title.lower())
                 if w not in _STOPWORDS and len(w) > 2}
        for word in words:
            counts.setdefault(word, []).append(row)
    keywords = sorted((w for w, members in counts.items()
                       if NICHE_MIN_LISTINGS <= len(members) < len(rows)),
                      key=lambda w: (-len(counts[w]), w))[:12]
    for word in keywords:
        out.append({"kind": "keyword", "label": f"'{word}' in the title", "keyword": word,
                    "rows": counts[word]})
    for segment in out:
        members = segment["rows"]
        stars = [row.stars for row in members if row.stars is not None]
        segment["n"] = len(members)
        segment["demand_per_listing"] = round(
            sum(row.bought_in_last_month for row in members) / len(members), 1) if members \
            else None
        segment["median_stars"] = _stat(stars, 50) if stars else None
    return [segment for segment in out if segment["n"] >= NICHE_MIN_LISTINGS]


if __name__ == "__main__":  # pragma: no cover
    import os
    import sys

    from retrieval.embedders.text import MiniLMTextEmbedder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / \
        "data" / "market" / "amazon_us_2023"
    print(AmazonMarketData.load(folder).write_title_centroids(MiniLMTextEmbedder()))
