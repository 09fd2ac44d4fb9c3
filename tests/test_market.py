"""Market data: statistics equal numpy's over the category's listings, category matching with the
real MiniLM weights lands in the right place, and every derived number can be recomputed from
the evidence it cites."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from langgraph.graph import END, START, StateGraph

from agents.context import Services
from agents.market.node import market_node, query_text
from agents.market.tools import AmazonMarketData
from agents.state import State
from retrieval.embedders.text import HashingTextEmbedder, MiniLMTextEmbedder

ROOT = Path(__file__).resolve().parents[1]
AMAZON = ROOT / "data" / "market" / "amazon_us_2023"

HOODIE = {"category": "Men/Tops/Hoodies & Sweatshirts", "title": "Chaz Kangeroo Hoodie",
          "material": "Wool", "attributes": {}, "hs_candidates": [], "text": None}


@pytest.fixture(scope="module")
def amazon() -> AmazonMarketData:
    if not (AMAZON / "amazon_products.csv").is_file():
        pytest.fail(f"marketplace data missing: {AMAZON}")
    return AmazonMarketData.load(AMAZON)


@pytest.fixture(scope="module")
def minilm() -> MiniLMTextEmbedder:
    return MiniLMTextEmbedder()


def _percentile(values, q):
    return round(float(np.percentile(np.asarray(values, dtype=float), q, method="linear")), 2)


def test_load_reads_every_listing_and_treats_zero_price_as_missing(amazon: AmazonMarketData
                                                                    ) -> None:
    assert len(amazon.categories) == 248
    assert len(amazon.listings) == 4960
    assert amazon.listings_per_category == 20
    assert amazon.source == "Amazon US 2023 sample (20 listings per category)"
    assert all(row.price is None or row.price > 0 for row in amazon.listings)
    assert any(row.price is None for row in amazon.listings)


def test_price_band_equals_numpy_over_the_category(amazon: AmazonMarketData) -> None:
    for category_id in (104, 110, 170, 201):
        prices = [row["price"] for row in amazon.records(category_id) if row["price"]]
        band = amazon.price_band(category_id)
        assert band["currency"] == "USD"
        assert band["n"] == len(prices)
        for key, q in (("min", 0), ("p25", 25), ("median", 50), ("p75", 75), ("max", 100)):
            assert band[key] == _percentile(prices, q), (category_id, key)
        assert band["min"] == round(min(prices), 2) and band["max"] == round(max(prices), 2)


def test_category_with_missing_prices_counts_only_priced_listings(amazon: AmazonMarketData) -> None:
    category_id = next(cid for cid in amazon.categories
                       if any(row["price"] is None for row in amazon.records(cid)))
    records = amazon.records(category_id)
    band = amazon.price_band(category_id)
    assert band["n"] == sum(row["price"] is not None for row in records) < len(records)


def test_demand_and_competition(amazon: AmazonMarketData) -> None:
    records = amazon.records(110)
    demand = amazon.demand(110)
    bought = [row["bought_in_last_month"] for row in records]
    assert demand["n"] == 20
    assert demand["bought_in_last_month_median"] == _percentile(bought, 50)
    assert demand["bought_in_last_month_p75"] == _percentile(bought, 75)
    assert demand["best_sellers"] == sum(row["is_best_seller"] for row in records)
    competition = amazon.competition(110)
    stars = [row["stars"] for row in records if row["stars"]]
    assert competition["n_listings"] == 20
    assert competition["median_stars"] == _percentile(stars, 50)


@pytest.mark.slow  # loads the real all-MiniLM-L6-v2 weights (several seconds on a CPU)
def test_category_matching_with_minilm(amazon: AmazonMarketData, minilm: MiniLMTextEmbedder
                                       ) -> None:
    hoodie = amazon.match_category(minilm, "Men hoodie sweatshirt")
    assert hoodie[0]["name"] == "Men's Clothing"
    assert len(hoodie) == 3 and hoodie[0]["score"] >= hoodie[1]["score"] >= hoodie[2]["score"]
    kettle = amazon.match_category(minilm, "electric kettle coffee machine")
    assert kettle[0]["name"] in {"Home Appliances", "Kitchen & Dining"}
    # category vectors are computed once per embedder and reused
    assert list(amazon._category_vectors) == [minilm.name]


def test_query_text_drops_merchandising_segments() -> None:
    product = {"category": "Gear/Watches/Collections/New Luma Yoga Collection",
               "title": "Cruise Dual Analog Watch", "text": "leather strap"}
    assert query_text(product) == "Gear Watches Cruise Dual Analog Watch leather strap"
    assert query_text({"category": "Kitchen -> Kettles"}) == "Kitchen Kettles"


TOASTER = {"category": "Kitchen -> Toasters",
           "title": "Hot Sale Bread Toaster 2-Slice Toaster 850W 220-240V Fast Shipping In Stock"}


def test_query_text_drops_trade_boilerplate_from_the_title() -> None:
    assert query_text(TOASTER) == "Kitchen Toasters Bread Toaster 2-Slice Toaster 850W 220-240V"
    assert query_text(TOASTER, keep_boilerplate=True) == \
        "Kitchen Toasters " + TOASTER["title"]
    # whole phrases in any case, longest first; words that only contain them stay
    product = {"title": "2024 New OEM/ODM Factory-made Stockpot Custom Logo FACTORY DIRECT PRICE "
                        "Wholesaler Set"}
    assert query_text(product) == "Factory-made Stockpot Wholesaler Set"
    # the seller's own words are theirs: nothing is removed from them
    assert query_text({"title": "Wholesale Kettle", "text": "wholesale kettle"}) == \
        "Kettle wholesale kettle"


def test_trade_boilerplate_no_longer_decides_the_market_category(amazon, minilm) -> None:
    # matched on category names alone, the titles of wholesale listings pulled this toaster
    # into a trade category
    kept = amazon.match_category(minilm, query_text(TOASTER, keep_boilerplate=True),
                                 use_titles=False)
    assert kept[0]["name"] == "Packaging & Shipping Supplies"
    for use_titles in (False, True):
        matched = amazon.match_category(minilm, query_text(TOASTER), use_titles=use_titles)
        assert matched[0]["name"] in {"Home Appliances", "Kitchen & Dining"}, matched


STEAMER = {"category": "Garment Care -> Handheld Steamers",
           "title": "Best Selling Garment Steamer Clothes Steamer Handheld Garment Steamer 1200W "
                    "220-240V 200ml Factory Direct Price"}


def test_a_categorys_listing_titles_say_what_its_name_does_not(amazon, minilm) -> None:
    # no category is named for garment steamers; the marketplace sells them as ironing products
    by_name = amazon.match_category(minilm, query_text(STEAMER), use_titles=False)
    assert by_name[0]["name"] != "Ironing Products"
    [best, *_] = amazon.match_category(minilm, query_text(STEAMER))
    assert best["name"] == "Ironing Products"
    assert best["score"] == pytest.approx((best["name_score"] + best["titles_score"]) / 2,
                                          abs=1e-4)


def test_the_shipped_title_means_are_those_of_the_bundled_table(amazon, minilm) -> None:
    from agents.market.tools import TITLE_CENTROIDS
    from retrieval.vector_cache import cache_path

    class Counting:
        name, texts = minilm.name, 0

        def embed_texts(self, texts):
            Counting.texts += len(texts)
            return minilm.embed_texts(texts)

    fresh = AmazonMarketData.load(AMAZON)
    shipped = fresh.title_centroids(Counting())
    assert Counting.texts == 0  # read from the file beside the table: no title embedded
    assert cache_path(AMAZON, TITLE_CENTROIDS, minilm.name).is_file()
    assert shipped.shape == (len(fresh.categories), minilm.dim)
    # what the file holds is what the titles give (spot-checked on three categories)
    rows = [i for i, cid in enumerate(fresh._category_ids) if fresh.listings_of(cid)][:3]
    for i in rows:
        titles = [row.title for row in fresh.listings_of(fresh._category_ids[i])]
        mean = minilm.embed_texts(titles).mean(axis=0)
        assert np.allclose(shipped[i], mean / np.linalg.norm(mean), atol=1e-4)


# -- the node in a graph -------------------------------------------------------------------------


def _one_node_graph():
    builder = StateGraph(State, context_schema=Services)
    builder.add_node("market", market_node)
    builder.add_edge(START, "market")
    builder.add_edge("market", END)
    return builder.compile()


def _services(amazon: AmazonMarketData, embedder) -> Services:
    return Services(catalog=None, image_embedder=None, index=None, text_embedder=embedder,
                    rulebook=None, market_data={"US": amazon})


def _recompute(field: str, values: list) -> float | int:
    if field in {"n", "n_listings", "n_with_reviews", "n_rated"}:
        return len(values)
    if field == "best_sellers":
        return sum(bool(value) for value in values)
    if field == "best_seller_share":
        return round(sum(bool(value) for value in values) / len(values), 3)
    if field in {"demand_per_listing", "category_demand_per_listing"}:
        return round(sum(values) / len(values), 1)
    if "." in field:  # a distribution bucket: count of values in [low, high)
        from agents.market.tools import BOUGHT_BUCKETS, STAR_BUCKETS

        name, key = field.split(".", 1)
        buckets = BOUGHT_BUCKETS if name == "bought_distribution" else STAR_BUCKETS
        low, high = next((lo, hi) for k, lo, hi in buckets if k == key)
        return sum(1 for v in values if v >= low and (high is None or v < high))
    q = {"min": 0, "p10": 10, "p25": 25, "median": 50, "p75": 75, "p90": 90, "max": 100,
         "bought_in_last_month_median": 50, "bought_in_last_month_p75": 75,
         "median_reviews": 50, "median_stars": 50}[field]
    return _percentile(values, q)


def test_node_in_graph_grounds_every_number(amazon: AmazonMarketData) -> None:
    state = _one_node_graph().invoke({"market": "us", "product": HOODIE},
                                     context=_services(amazon, HashingTextEmbedder()))
    analysis = state["market_analysis"]
    evidence = state["evidence"]
    assert analysis["available"] is True and analysis["market"] == "US"
    assert analysis["source"] == "Amazon US 2023 sample (20 listings per category)"
    category_id = analysis["category"]["category_id"]
    assert analysis["price_band"] == {**amazon.price_band(category_id),
                                      "evidence": analysis["price_band"]["evidence"]}
    assert len(analysis["alternatives"]) == 2

    # one evidence record per listing price, keyed by ASIN
    priced = [row for row in amazon.records(category_id) if row["price"] is not None]
    for row in priced:
        record = evidence[f"amazon_products.csv:{row['asin']}:price"]
        assert record["value"] == row["price"] and record["record_id"] == row["asin"]

    derived = {eid: record for eid, record in evidence.items() if record["source"] == "derived"}
    assert f"derived:price_band:US:{category_id}:median" in derived
    stats = 0
    for eid, record in derived.items():
        # a count of none cites none: most of the sample's categories state no review counts
        assert record["inputs"] or (record["field"] == "n_with_reviews"
                                    and record["value"] == 0), eid
        values = [evidence[input_id]["value"] for input_id in record["inputs"]]
        if record["field"] == "score":
            continue
        assert record["value"] == _recompute(record["field"], values), eid
        stats += 1
    assert stats >= 10

    # the section's evidence lists point at those derived records
    for section in ("price_band", "demand", "competition"):
        for eid in analysis[section]["evidence"]:
            field = evidence[eid]["field"]
            value = analysis[section]
            for part in field.split(".", 1):
                value = value[part]
            assert evidence[eid]["value"] == value
    assert set(analysis["price_band"]) >= {"p10", "p25", "median", "p75", "p90", "n"}
    assert sum(analysis["demand"]["bought_distribution"].values()) == 20
    # every niche cites its figures, and each one beats the category on demand per listing
    # while rating below its median
    for niche in analysis["niches"]:
        assert niche["demand_per_listing"] >= niche["category_demand_per_listing"]
        assert niche["median_stars"] < niche["category_median_stars"]
        held = {evidence[eid]["value"] for eid in niche["evidence"]}
        assert {niche["n"], niche["demand_per_listing"], niche["median_stars"]} <= held


def test_market_without_data_is_unavailable_with_a_warning(amazon: AmazonMarketData) -> None:
    state = _one_node_graph().invoke({"market": "DE", "product": HOODIE},
                                     context=_services(amazon, HashingTextEmbedder()))
    analysis = state["market_analysis"]
    assert analysis == {"market": "DE", "available": False,
                        "reason": "no marketplace data for DE"}
    assert len(state["warnings"]) == 1 and "DE" in state["warnings"][0]
    assert not state.get("evidence")


def test_product_with_nothing_to_match_is_unavailable(amazon: AmazonMarketData) -> None:
    state = _one_node_graph().invoke({"market": "US", "product": {}},
                                     context=_services(amazon, HashingTextEmbedder()))
    assert state["market_analysis"]["available"] is False
    assert state["warnings"]
