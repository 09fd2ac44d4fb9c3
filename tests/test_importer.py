"""The supplier-catalog importer: clean catalogs load, bad ones report file:line: column: why."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from data.catalog.importer import CatalogError, load_catalog
from data.catalog.schema import Catalog

SUPPLIER_HEADER = ["supplier_id", "name", "kind", "country", "city", "staff", "certifications",
                   "capabilities", "response_rate", "response_hours", "export_markets", "notes"]
LISTING_HEADER = ["listing_id", "supplier_id", "title", "images", "product_id", "price_min",
                  "price_max", "currency", "moq", "weight_kg", "attributes"]


def _supplier(**values: str) -> dict[str, str]:
    row = {"supplier_id": "S001", "name": "Cixi Hengda Electric Appliance Co., Ltd.",
           "kind": "factory", "country": "CN", "city": "Cixi", "staff": "320",
           "certifications": "CE|RoHS", "capabilities": "oem|samples", "response_rate": "0.92",
           "response_hours": "", "export_markets": "US|DE", "notes": "extra column, ignored"}
    row.update(values)
    return row


def _listing(**values: str) -> dict[str, str]:
    row = {"listing_id": "L001", "supplier_id": "S001", "title": "Electric Kettle 1.7L",
           "images": "images/a.jpg", "product_id": "kettle", "price_min": "5.5",
           "price_max": "7.25", "currency": "USD", "moq": "100", "weight_kg": "1.1",
           "attributes": json.dumps({"price_tiers": [{"min_qty": 100, "unit_price": 7.25}]})}
    row.update(values)
    return row


def write_catalog(root: Path, suppliers: list[dict[str, str]], listings: list[dict[str, str]],
                  supplier_header: list[str] = SUPPLIER_HEADER,
                  listing_header: list[str] = LISTING_HEADER) -> Path:
    """A small catalog folder with two tiny photos, images/a.jpg and images/b.jpg."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    for name, colour in (("a.jpg", (200, 30, 30)), ("b.jpg", (30, 30, 200))):
        Image.new("RGB", (8, 8), colour).save(root / "images" / name, "JPEG")
    for name, header, rows in (("suppliers.csv", supplier_header, suppliers),
                               ("listings.csv", listing_header, listings)):
        with (root / name).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore",
                                    lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return root


def problems_of(root: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(root)
    error = caught.value
    assert isinstance(error, ValueError)
    assert str(error) == "\n".join(error.problems)
    return error.problems


def test_clean_catalog_loads(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier(), _supplier(supplier_id="S002", kind="trading_company",
                                                    staff="", capabilities="")],
                  [_listing(images="images/a.jpg | images/b.jpg|"),
                   _listing(listing_id="L002", supplier_id="S002", price_min="", price_max="",
                            moq="", attributes="")])
    catalog = load_catalog(tmp_path)
    assert isinstance(catalog, Catalog)
    assert sorted(catalog.suppliers) == ["S001", "S002"]
    s1, s2 = catalog.suppliers["S001"], catalog.suppliers["S002"]
    assert s1.certifications == ("CE", "RoHS") and s1.export_markets == ("US", "DE")
    assert s1.staff == 320 and s1.response_rate == pytest.approx(0.92)
    assert s1.response_hours is None and s1.line == 2
    assert s2.staff is None and s2.capabilities == () and s2.kind == "trading_company"
    first = catalog.listings["L001"]
    assert first.images == ("images/a.jpg", "images/b.jpg")
    assert first.price_min == 5.5 and first.moq == 100 and first.currency == "USD"
    assert first.attributes["price_tiers"][0]["unit_price"] == 7.25
    second = catalog.listings["L002"]
    assert second.price_min is None and second.moq is None and second.attributes == {}
    assert catalog.supplier_of("L002").supplier_id == "S002"
    assert [row.listing_id for row in catalog.listings_of_product("kettle")] == ["L001", "L002"]


def test_bad_number(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier()],
                  [_listing(), _listing(listing_id="L002", price_min="abc")])
    assert problems_of(tmp_path) == ["listings.csv:3: price_min: not a number: 'abc'"]


def test_bad_integer_and_moq(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier(staff="12.5")], [_listing(moq="0")])
    assert problems_of(tmp_path) == [
        "suppliers.csv:2: staff: not an integer: '12.5'",
        "listings.csv:2: moq: must be >= 1: '0'",
    ]


def test_bad_rate(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier(response_rate="1.5")], [_listing()])
    assert problems_of(tmp_path) == ["suppliers.csv:2: response_rate: rate out of range 0..1: '1.5'"]


def test_bad_kind_country_and_capability(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier(kind="agent", country="China", capabilities="oem|fly")],
                  [_listing()])
    problems = problems_of(tmp_path)
    assert problems[0].startswith("suppliers.csv:2: kind: must be one of factory, trading_company")
    assert problems[1] == "suppliers.csv:2: country: not a two-letter ISO 3166 code: 'China'"
    assert problems[2].startswith("suppliers.csv:2: capabilities: unknown capability 'fly'")
    assert len(problems) == 3


def test_unknown_supplier(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier()], [_listing(supplier_id="S999")])
    assert problems_of(tmp_path) == [
        "listings.csv:2: supplier_id: unknown supplier 'S999' (not in suppliers.csv)"]


def test_missing_image(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier()], [_listing(images="images/a.jpg|images/gone.jpg")])
    assert problems_of(tmp_path) == ["listings.csv:2: images: image not found: 'images/gone.jpg'"]


@pytest.mark.parametrize("path", ["../outside.jpg", "images/../../outside.jpg"])
def test_image_path_escaping_the_folder(tmp_path: Path, path: str) -> None:
    root = tmp_path / "catalog"
    write_catalog(root, [_supplier()], [_listing(images=path)])
    Image.new("RGB", (8, 8)).save(tmp_path / "outside.jpg", "JPEG")  # exists, but outside
    assert problems_of(root) == [
        f"listings.csv:2: images: image path escapes the catalog folder: {path!r}"]


def test_absolute_image_path(tmp_path: Path) -> None:
    absolute = str((tmp_path / "images" / "a.jpg").resolve())
    write_catalog(tmp_path, [_supplier()], [_listing(images=absolute)])
    assert problems_of(tmp_path) == [
        f"listings.csv:2: images: image path must be relative to the catalog folder: {absolute!r}"]


def test_missing_required_column(tmp_path: Path) -> None:
    header = [column for column in LISTING_HEADER if column != "title"]
    write_catalog(tmp_path, [_supplier()], [_listing()], listing_header=header)
    assert problems_of(tmp_path) == ["listings.csv:1: title: missing required column"]


def test_empty_required_field(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier(name="")], [_listing()])
    assert problems_of(tmp_path) == ["suppliers.csv:2: name: required field is empty"]


def test_duplicate_ids(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier(), _supplier()],
                  [_listing(), _listing(images="images/b.jpg")])
    assert problems_of(tmp_path) == [
        "suppliers.csv:3: supplier_id: duplicate supplier_id 'S001' (first on line 2)",
        "listings.csv:3: listing_id: duplicate listing_id 'L001' (first on line 2)",
    ]


def test_missing_file(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier()], [_listing()])
    (tmp_path / "suppliers.csv").unlink()
    assert problems_of(tmp_path) == ["suppliers.csv:0: -: file not found"]


def test_attributes_and_prices(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier()], [
        _listing(attributes="[1, 2]"),
        _listing(listing_id="L002", attributes="{not json"),
        _listing(listing_id="L003", price_min="9", price_max="3"),
    ])
    problems = problems_of(tmp_path)
    assert problems[0] == "listings.csv:2: attributes: not a JSON object: '[1, 2]'"
    assert problems[1].startswith("listings.csv:3: attributes: invalid JSON:")
    assert problems[2] == "listings.csv:4: price_min: greater than price_max: 9 > 3"
    assert len(problems) == 3


def test_line_numbers_count_multiline_fields(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier()], [
        _listing(title="Kettle\nwith a title\nover three lines"),
        _listing(listing_id="L002", weight_kg="heavy"),
    ])
    assert problems_of(tmp_path) == ["listings.csv:5: weight_kg: not a number: 'heavy'"]


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    write_catalog(
        tmp_path,
        [_supplier(), _supplier(supplier_id="S002", response_rate="2"), _supplier()],
        [_listing(price_max="x"),
         _listing(listing_id="L002", supplier_id="S404"),
         _listing(listing_id="L003", images="../escape.jpg|images/none.jpg"),
         _listing(listing_id="L001", moq="lots")],
    )
    assert problems_of(tmp_path) == [
        "suppliers.csv:3: response_rate: rate out of range 0..1: '2'",
        "suppliers.csv:4: supplier_id: duplicate supplier_id 'S001' (first on line 2)",
        "listings.csv:2: price_max: not a number: 'x'",
        "listings.csv:3: supplier_id: unknown supplier 'S404' (not in suppliers.csv)",
        "listings.csv:4: images: image path escapes the catalog folder: '../escape.jpg'",
        "listings.csv:4: images: image not found: 'images/none.jpg'",
        "listings.csv:5: moq: not an integer: 'lots'",
        "listings.csv:5: listing_id: duplicate listing_id 'L001' (first on line 2)",
    ]


def test_utf8_bom_and_blank_lines(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier()], [_listing()])
    text = (tmp_path / "suppliers.csv").read_text(encoding="utf-8")
    (tmp_path / "suppliers.csv").write_text("\ufeff" + text + "\n\n", encoding="utf-8")
    assert list(load_catalog(tmp_path).suppliers) == ["S001"]


def test_malformed_rows_and_files(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier(staff="1_000")], [_listing(), _listing(listing_id="L002")])
    with (tmp_path / "listings.csv").open("a", encoding="utf-8") as handle:
        handle.write("L003,S001,Kettle,images/a.jpg,kettle,1,2,USD,5,1,{},surplus\n")
    text = (tmp_path / "listings.csv").read_text(encoding="utf-8").replace("L002", "L0\u00e9")
    (tmp_path / "listings.csv").write_bytes(text.encode("latin-1"))
    problems = problems_of(tmp_path)
    assert problems[0] == "suppliers.csv:2: staff: not an integer: '1_000'"
    assert problems[1].startswith("listings.csv:0: -: not UTF-8 text")
    assert len(problems) == 2


def test_too_many_fields_in_line_order(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier()], [_listing(moq="x")])
    with (tmp_path / "listings.csv").open("a", encoding="utf-8") as handle:
        handle.write("L003,S001,Kettle,images/a.jpg,kettle,1,2,USD,5,1,{},surplus\n")
    assert problems_of(tmp_path) == [
        "listings.csv:2: moq: not an integer: 'x'",
        "listings.csv:3: -: 12 fields but the header has 11",
    ]


@pytest.mark.parametrize("tiers, problem", [
    ("abc", "must be a non-empty list"),
    ([], "must be a non-empty list"),
    ([5], "tier 0: not an object"),
    ([{"min_qty": "x", "unit_price": 2.0}], "tier 0: min_qty must be a whole number >= 1, got 'x'"),
    ([{"min_qty": -5, "unit_price": 2.0}], "tier 0: min_qty must be a whole number >= 1"),
    ([{"min_qty": 10, "unit_price": -1}], "tier 0: unit_price must be a number > 0, got -1"),
    ([{"min_qty": 10, "unit_price": "abc"}], "tier 0: unit_price must be a number > 0"),
    ([{"min_qty": 10, "unit_price": 2.0}, {"min_qty": 10, "unit_price": 1.5}],
     "tier 1: min_qty 10 must be above the previous tier's 10"),
])
def test_price_tiers_are_checked_row_by_row(tmp_path: Path, tiers, problem: str) -> None:
    """Unit prices and landed costs come from these rows: a bad one fails the import naming its
    line, instead of every run that reaches the listing."""
    write_catalog(tmp_path, [_supplier()],
                  [_listing(attributes=json.dumps({"price_tiers": tiers}))])
    (found,) = problems_of(tmp_path)
    assert found.startswith(f"listings.csv:2: attributes: price_tiers: {problem}"), found


def test_nan_in_attributes_and_a_photo_listed_twice_are_refused(tmp_path: Path) -> None:
    write_catalog(tmp_path, [_supplier()], [
        _listing(attributes='{"price_tiers": [{"min_qty": 100, "unit_price": NaN}]}'),
        _listing(listing_id="L002", images="images/a.jpg|images/b.jpg|images/a.jpg")])
    problems = problems_of(tmp_path)
    assert problems == ["listings.csv:2: attributes: invalid JSON: NaN is not a JSON number",
                        "listings.csv:3: images: photo listed more than once: 'images/a.jpg'"]


def test_a_catalog_without_listings_is_refused(tmp_path: Path) -> None:
    """A truncated export must not replace a good index with an empty one."""
    write_catalog(tmp_path, [_supplier()], [])
    assert problems_of(tmp_path) == ["listings.csv:1: -: no listings (a catalog needs at least "
                                     "one)"]
