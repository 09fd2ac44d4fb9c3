"""The demo supplier-catalog generator: deterministic, and the committed catalog is consistent."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image

from data.catalog.importer import load_catalog
from data.catalog.schema import Catalog
from data.demo import generator

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "catalogs" / "demo"
EVAL_SET = REPO / "evals" / "sets" / "demo_reserved" / "demo_reserved.jsonl"


def _digests(root: Path) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DEMO)


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((DEMO / "ground_truth.json").read_text(encoding="utf-8"))["products"]


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    first = generator.generate(tmp_path / "a", seed=11, limit_products=8,
                               eval_set=tmp_path / "a" / "cases.jsonl")
    second = generator.generate(tmp_path / "b", seed=11, limit_products=8,
                                eval_set=tmp_path / "b" / "cases.jsonl")
    assert first["products"] == 16 and first["listings"] >= 32
    assert {k: v for k, v in first.items() if k != "bytes"} == \
        {k: v for k, v in second.items() if k != "bytes"}
    digests = _digests(tmp_path / "a")
    assert digests == _digests(tmp_path / "b")
    assert any(name.startswith("images/") for name in digests)
    load_catalog(tmp_path / "a")  # a subset is a valid catalog too
    generator.generate(tmp_path / "c", seed=12, limit_products=8)
    assert _digests(tmp_path / "c")["listings.csv"] != digests["listings.csv"]


def test_regenerating_into_the_same_folder_replaces_old_files(tmp_path: Path) -> None:
    generator.generate(tmp_path, seed=3, limit_products=3)
    stale = tmp_path / "images" / "S999" / "old.jpg"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    generator.generate(tmp_path, seed=3, limit_products=3)
    assert not stale.exists()
    load_catalog(tmp_path)


def test_committed_catalog_loads(catalog: Catalog) -> None:
    kinds = [supplier.kind for supplier in catalog.suppliers.values()]
    assert len(catalog.suppliers) == 60
    assert set(kinds) == {"factory", "trading_company"}
    assert sorted(catalog.suppliers) == [f"S{n:03d}" for n in range(1, 61)]
    assert any(s.response_hours is None for s in catalog.suppliers.values())
    assert any(s.staff is None for s in catalog.suppliers.values())


def test_every_product_has_one_source_factory_and_traders(catalog: Catalog, truth: dict) -> None:
    by_product: dict[str, list] = defaultdict(list)
    for listing in catalog.listings.values():
        by_product[listing.product_id].append(listing)
    assert set(by_product) == set(truth)
    for product_id, listings in by_product.items():
        suppliers = [catalog.suppliers[row.supplier_id] for row in listings]
        assert 2 <= len({s.supplier_id for s in suppliers}) == len(listings) <= 5, product_id
        factories = [row for row, s in zip(listings, suppliers) if s.kind == "factory"]
        assert len(factories) == 1, product_id
        factory = factories[0]
        assert factory.supplier_id == truth[product_id]["source_supplier_id"]
        for row in listings:
            assert row.hs_code == truth[product_id]["hs_code"]
            tiers = row.attributes["price_tiers"]
            assert len(tiers) == 3
            assert [t["unit_price"] for t in tiers] == sorted(
                (t["unit_price"] for t in tiers), reverse=True)
            assert row.price_min == tiers[-1]["unit_price"]
            assert row.price_max == tiers[0]["unit_price"]
            if row is not factory:  # traders sell the same product dearer
                assert row.price_max > factory.price_max


def test_factory_photos_are_originals_and_trader_photos_are_altered(catalog: Catalog) -> None:
    originals = {}
    for source in generator.SOURCE_CATALOGS:
        for path in (REPO / "data" / "catalogs" / source / "images").iterdir():
            originals[hashlib.sha256(path.read_bytes()).hexdigest()] = path
    for listing in catalog.listings.values():
        kind = catalog.suppliers[listing.supplier_id].kind
        for image in listing.images:
            path = catalog.image_path(image)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert (digest in originals) == (kind == "factory"), image
            with Image.open(path) as opened:
                assert max(opened.size) <= generator.ALTERED_MAX_SIDE


def test_reserved_queries_appear_in_no_listing(catalog: Catalog, truth: dict) -> None:
    listed = {hashlib.sha256(catalog.image_path(image).read_bytes()).hexdigest()
              for listing in catalog.listings.values() for image in listing.images}
    listed_names = {Path(image).name for listing in catalog.listings.values()
                    for image in listing.images}
    queries = sorted((DEMO / "queries").iterdir())
    assert queries
    reserved = [q["image"] for entry in truth.values() for q in entry["reserved_queries"]]
    assert sorted(reserved) == [f"queries/{path.name}" for path in queries]
    for path in queries:
        assert hashlib.sha256(path.read_bytes()).hexdigest() not in listed
        assert path.name not in listed_names


def test_ground_truth_agrees_with_listings(truth: dict) -> None:
    with (DEMO / "listings.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    listing_ids: dict[str, list[str]] = defaultdict(list)
    supplier_ids: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        listing_ids[row["product_id"]].append(row["listing_id"])
        supplier_ids[row["product_id"]].add(row["supplier_id"])
    for product_id, entry in truth.items():
        assert entry["listing_ids"] == sorted(listing_ids[product_id])
        assert entry["supplier_ids"] == sorted(supplier_ids[product_id])
        assert entry["source_supplier_id"] in entry["supplier_ids"]


def test_eval_set_points_at_reserved_photos(truth: dict) -> None:
    cases = [json.loads(line) for line in EVAL_SET.read_text(encoding="utf-8").splitlines()]
    reserved = sum(len(entry["reserved_queries"]) for entry in truth.values())
    assert len(cases) == reserved
    assert len({case["id"] for case in cases}) == len(cases)
    for case in cases:
        assert (EVAL_SET.parent / case["image"]).is_file(), case["id"]
        assert case["market"] == "US" and "held_out_view" in case["tags"]
        expect = case["expect"]
        (product_id,) = expect["relevant_product_ids"]
        assert expect["source_supplier_id"] == truth[product_id]["source_supplier_id"]
        assert expect["hs_heading"] == truth[product_id]["hs_code"][:4]


def test_hs_codes_exist_in_the_bundled_nomenclature() -> None:
    with (REPO / "data" / "trade" / "hs" / "harmonized-system.csv").open(encoding="utf-8") as f:
        known = {row["hscode"] for row in csv.DictReader(f)}
    codes = set()
    for rule in generator.HS_CODES.values():
        codes.update([rule] if isinstance(rule, str) else rule.values())
    assert codes <= known, sorted(codes - known)
