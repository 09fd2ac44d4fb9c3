"""Naming the likely source of a product group from the catalog's facts and photo files."""

from pathlib import Path

from PIL import Image

from agents.supplier_match.source import estimate_jpeg_quality, name_source
from data.catalog.schema import Catalog, Listing, Supplier


def _photo(path: Path, size, quality):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 40, 40)).save(path, "JPEG", quality=quality)


def test_jpeg_quality_estimate_tracks_the_encoder(tmp_path):
    for quality in (30, 60, 90):
        _photo(tmp_path / f"q{quality}.jpg", (64, 64), quality)
        with Image.open(tmp_path / f"q{quality}.jpg") as image:
            assert abs(estimate_jpeg_quality(image) - quality) <= 2
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    with Image.open(tmp_path / "x.png") as image:
        assert estimate_jpeg_quality(image) is None


def test_factory_with_original_photos_and_lowest_price_is_named(tmp_path):
    _photo(tmp_path / "f.jpg", (640, 640), 95)
    _photo(tmp_path / "t1.jpg", (512, 512), 50)
    _photo(tmp_path / "t2.jpg", (600, 600), 40)
    suppliers = {"F": Supplier("F", "Maker", kind="factory", years_in_business=12),
                 "T1": Supplier("T1", "Trader one", kind="trading_company", years_in_business=3),
                 "T2": Supplier("T2", "Trader two", kind="trading_company")}
    listings = {"L1": Listing("L1", "F", "Kettle", ("f.jpg",), price_min=5.0),
                "L2": Listing("L2", "T1", "Kettle", ("t1.jpg",), price_min=6.5),
                "L3": Listing("L3", "T2", "Kettle", ("t2.jpg",), price_min=7.0)}
    catalog = Catalog(tmp_path, suppliers, listings)
    source = name_source(list(listings.values()), catalog)
    assert source["supplier_id"] == "F" and source["listing_id"] == "L1"
    reasons = " | ".join(source["reasons"])
    assert "only factory" in reasons and "lowest price" in reasons
    assert "JPEG quality 95" in reasons and "longest in business" in reasons


def test_without_kind_the_original_photos_decide(tmp_path):
    _photo(tmp_path / "a.jpg", (300, 300), 45)
    _photo(tmp_path / "b.jpg", (640, 640), 92)
    suppliers = {"A": Supplier("A", "A"), "B": Supplier("B", "B")}
    listings = {"L1": Listing("L1", "A", "Bag", ("a.jpg",)),
                "L2": Listing("L2", "B", "Bag", ("b.jpg",))}
    source = name_source(list(listings.values()), Catalog(tmp_path, suppliers, listings))
    assert source["supplier_id"] == "B"
    assert "supplier kind unknown" in source["reasons"]
