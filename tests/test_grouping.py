"""Grouping listings into products when the catalog gives no product_id: same-picture copies
listed by different suppliers become one product."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from agents.supplier_match.grouping import group_keys
from data.catalog.schema import Catalog, Listing, Supplier
from retrieval.index import ListingHit
from retrieval.rerank import LocalFeatureReranker

DEMO = Path(__file__).resolve().parents[1] / "data" / "catalogs" / "demo"


def _catalog(product_ids):
    suppliers = {s: Supplier(s, s) for s in ("F", "T1", "T2")}
    owners = {"L1": "F", "L2": "T1", "L3": "T2", "L4": "T1"}
    listings = {lid: Listing(lid, owners[lid], lid, (f"{lid}.jpg",), product_id=product_ids.get(lid))
                for lid in owners}
    return Catalog(Path("."), suppliers, listings)


HITS = [ListingHit("L2", 0.9, "L2.jpg"), ListingHit("L1", 0.8, "L1.jpg"),
        ListingHit("L3", 0.7, "L3.jpg"), ListingHit("L4", 0.6, "L4.jpg")]


def test_product_id_wins_and_unlabelled_listings_stand_alone_without_a_checker():
    keys = group_keys(HITS, _catalog({"L1": "P1", "L2": "P1"}))
    assert keys == {"L2": "P1", "L1": "P1", "L3": "listing:L3", "L4": "listing:L4"}


def test_same_picture_copies_of_other_suppliers_are_grouped_under_the_best_hit():
    copies = {frozenset({"L1.jpg", "L2.jpg"}), frozenset({"L1.jpg", "L3.jpg"}),
              frozenset({"L2.jpg", "L4.jpg"})}
    keys = group_keys(HITS, _catalog({}), lambda a, b: frozenset({a, b}) in copies)
    # L1-L2 and L1-L3 are copies; L2-L4 too, but L2 and L4 belong to the same supplier T1
    assert keys == {"L2": "listing:L2", "L1": "listing:L2", "L3": "listing:L2",
                    "L4": "listing:L4"}


def _factory_and_trader_copy():
    """(factory photo, a trader's altered copy of it) from the demo catalog."""
    with open(DEMO / "suppliers.csv", newline="") as handle:
        kinds = {row["supplier_id"]: row["kind"] for row in csv.DictReader(handle)}
    by_name: dict[str, dict[str, str]] = {}
    with open(DEMO / "listings.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            for image in row["images"].split("|"):
                by_name.setdefault(Path(image).name, {})[kinds[row["supplier_id"]]] = image
    for name in sorted(by_name):
        if {"factory", "trading_company"} <= set(by_name[name]):
            return by_name[name]["factory"], by_name[name]["trading_company"]
    raise AssertionError("no copied photo in the demo catalog")


@pytest.mark.skipif(not (DEMO / "listings.csv").is_file(), reason="demo catalog missing")
def test_local_features_recognise_a_trader_copy_as_the_same_picture():
    factory, trader = _factory_and_trader_copy()
    with open(DEMO / "listings.csv", newline="") as handle:
        other = next(row["images"].split("|")[0] for row in csv.DictReader(handle)
                     if Path(row["images"].split("|")[0]).name != Path(factory).name)
    reranker = LocalFeatureReranker()

    def load(path):
        return Image.open(DEMO / path)

    assert reranker.same_picture(factory, trader, load)
    assert not reranker.same_picture(factory, other, load)
