"""Incremental index updates: after a catalog change, ``update_index`` re-embeds only what
changed and leaves an index that searches exactly like a full rebuild, on FAISS and Qdrant."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

from data.catalog.importer import load_catalog
from retrieval.build import (
    CatalogPhotoError,
    build_index,
    catalog_fingerprint,
    index_matches_catalog,
    listing_fingerprint,
    update_index,
)
from retrieval.embedders.base import l2_normalise
from retrieval.filters import SearchFilter
from retrieval.images import ImageDecodeError
from retrieval.index import IndexMismatchError, open_index

SUPPLIER_COLUMNS = ["supplier_id", "name", "kind", "country", "certifications", "capabilities"]
LISTING_COLUMNS = ["listing_id", "supplier_id", "title", "images", "product_id", "category",
                   "price_min", "price_max", "moq"]
COLOURS = ["red", "green", "blue", "orange", "purple", "teal", "gold", "grey", "pink", "navy"]
SHAPES = ["ellipse", "rectangle"]


class TinyPixelEmbedder:
    """Fake image embedder: the photo shrunk to 4 x 4 RGB pixels (48 numbers), L2-normalised.
    Deterministic, instant, and different photos give different vectors."""

    name = "tiny-pixels"
    version = "tiny-pixels-1"
    dim = 48

    def embed_images(self, images):
        rows = [np.asarray(image.convert("RGB").resize((4, 4), Image.BILINEAR), np.float32)
                .ravel() / 255.0 + 0.01 for image in images]
        return l2_normalise(np.stack(rows)) if rows else np.zeros((0, self.dim), np.float32)


def _photo(path, colour, shape, seed):
    image = Image.new("RGB", (32, 32), "white")
    draw = ImageDraw.Draw(image)
    offset = seed % 7
    getattr(draw, shape)((4 + offset, 4, 26, 28 - offset), fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _write_catalog(folder, listings, suppliers):
    folder.mkdir(parents=True, exist_ok=True)
    for name, columns, rows in (("suppliers.csv", SUPPLIER_COLUMNS, suppliers),
                                ("listings.csv", LISTING_COLUMNS, listings)):
        with open(folder / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)


def _suppliers():
    return [
        {"supplier_id": "S1", "name": "Ningbo Bags Factory", "kind": "factory", "country": "CN",
         "certifications": "CE|ISO9001", "capabilities": "oem|small_batch"},
        {"supplier_id": "S2", "name": "Yiwu Trading", "kind": "factory", "country": "CN",
         "certifications": "", "capabilities": "dropship"},
        {"supplier_id": "S3", "name": "Hanoi Works", "kind": "", "country": "VN",
         "certifications": "BSCI", "capabilities": ""},
    ]


def _listing(i, images):
    return {"listing_id": f"L{i:02d}", "supplier_id": f"S{i % 3 + 1}",
            "title": f"Item {i}", "images": "|".join(images), "product_id": f"P{i % 5}",
            "category": ("bags", "watches")[i % 2], "price_min": f"{2 + i * 0.5:.2f}",
            "price_max": f"{4 + i * 0.5:.2f}", "moq": str(10 * (i % 8) + 5)}


@pytest.fixture
def catalog_dir(tmp_path):
    """A catalog of 12 listings (1 to 3 photos each) from three suppliers."""
    folder = tmp_path / "catalog"
    listings = []
    for i in range(12):
        images = []
        for j in range(1 + i % 3):
            relative = f"images/L{i:02d}-{j}.png"
            _photo(folder / relative, COLOURS[(i + j) % len(COLOURS)], SHAPES[(i + j) % 2], i)
            images.append(relative)
        listings.append(_listing(i, images))
    _write_catalog(folder, listings, _suppliers())
    return folder


def _rows(folder):
    with open(folder / "listings.csv", newline="") as handle:
        listings = list(csv.DictReader(handle))
    with open(folder / "suppliers.csv", newline="") as handle:
        suppliers = list(csv.DictReader(handle))
    return listings, suppliers


def _copy(folder, target):
    shutil.copytree(folder, target)
    return target


def _queries(catalog, embedder):
    from retrieval.images import load_image

    paths = sorted({image for listing in catalog.listings.values() for image in listing.images})
    vectors = embedder.embed_images([load_image(catalog.image_path(p)) for p in paths])
    rng = np.random.default_rng(0)
    return np.vstack([vectors, l2_normalise(rng.random((5, embedder.dim)))])


def _assert_same_results(updated, rebuilt, queries, filters=(None,), k=8):
    for search_filter in filters:
        for query in queries:
            got = updated.search(query, k, filter=search_filter)
            want = rebuilt.search(query, k, filter=search_filter)
            assert [h.listing_id for h in got] == [h.listing_id for h in want]
            assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)


BACKENDS = {"faiss-flat": {"backend": "faiss", "index_type": "flat"},
            "qdrant-local": {"backend": "qdrant"}}
FILTERS = (None, SearchFilter(max_moq=50), SearchFilter(supplier_kind="factory"),
           SearchFilter(categories=("bags",), certifications=("ce",)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_adding_one_listing_and_deleting_another_matches_a_full_rebuild(
        backend, catalog_dir, tmp_path):
    embedder = TinyPixelEmbedder()
    index = build_index(load_catalog(catalog_dir), embedder, progress=False, **BACKENDS[backend])

    changed = _copy(catalog_dir, tmp_path / "changed")
    listings, suppliers = _rows(changed)
    listings = [row for row in listings if row["listing_id"] != "L04"]
    _photo(changed / "images" / "L20-0.png", "black", "ellipse", 3)
    listings.append(_listing(20, ["images/L20-0.png"]))
    _write_catalog(changed, listings, suppliers)
    catalog = load_catalog(changed)

    report = update_index(index, catalog, embedder, progress=False)
    assert report.added == ("L20",) and report.deleted == ("L04",) and report.updated == ()
    assert report.unchanged == 11 and report.photos_embedded == 1
    rebuilt = build_index(catalog, embedder, progress=False, **BACKENDS[backend])
    assert index.listings() == rebuilt.listings() and len(index) == len(rebuilt)
    assert index.fingerprints == rebuilt.fingerprints
    assert index.catalog_fingerprint == rebuilt.catalog_fingerprint
    _assert_same_results(index, rebuilt, _queries(catalog, embedder), FILTERS)

    index.save(tmp_path / "idx")  # and the same after a save / load round trip
    loaded = open_index(tmp_path / "idx", expected_embedder=embedder.name)
    _assert_same_results(loaded, rebuilt, _queries(catalog, embedder)[:6], FILTERS)
    assert update_index(loaded, catalog, embedder, progress=False).changed is False
    for opened in (index, rebuilt, loaded):
        opened.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_changed_supplier_rewrites_payloads_without_re_embedding(
        backend, catalog_dir, tmp_path):
    embedder = TinyPixelEmbedder()
    index = build_index(load_catalog(catalog_dir), embedder, progress=False, **BACKENDS[backend])
    trading = SearchFilter(supplier_kind="trading_company")
    query = _queries(load_catalog(catalog_dir), embedder)[0]
    assert index.search(query, 20, filter=trading) == []

    changed = _copy(catalog_dir, tmp_path / "changed")
    listings, suppliers = _rows(changed)
    suppliers[1]["kind"] = "trading_company"  # S2
    _write_catalog(changed, listings, suppliers)
    catalog = load_catalog(changed)
    report = update_index(index, catalog, embedder, progress=False)

    of_s2 = tuple(sorted(lid for lid, row in catalog.listings.items() if row.supplier_id == "S2"))
    assert report.updated == of_s2 and report.photos_embedded == 0
    assert {h.listing_id for h in index.search(query, 20, filter=trading)} == set(of_s2)
    assert index.payload(of_s2[0])["supplier_kind"] == "trading_company"
    rebuilt = build_index(catalog, embedder, progress=False, **BACKENDS[backend])
    _assert_same_results(index, rebuilt, _queries(catalog, embedder), FILTERS + (trading,))


def test_a_changed_photo_is_re_embedded(catalog_dir, tmp_path):
    embedder = TinyPixelEmbedder()
    index = build_index(load_catalog(catalog_dir), embedder, progress=False)
    changed = _copy(catalog_dir, tmp_path / "changed")
    _photo(changed / "images" / "L05-1.png", "black", "rectangle", 1)  # same path, new bytes
    catalog = load_catalog(changed)
    report = update_index(index, catalog, embedder, progress=False)
    assert report.updated == ("L05",) and report.photos_embedded == 3  # all photos of L05
    rebuilt = build_index(catalog, embedder, progress=False)
    _assert_same_results(index, rebuilt, _queries(catalog, embedder))


def test_a_broken_photo_leaves_the_index_as_it_was(catalog_dir, tmp_path):
    embedder = TinyPixelEmbedder()
    index = build_index(load_catalog(catalog_dir), embedder, progress=False)
    before = (len(index), index.listings(), dict(index.fingerprints))
    changed = _copy(catalog_dir, tmp_path / "changed")
    listings, suppliers = _rows(changed)
    listings = [row for row in listings if row["listing_id"] != "L01"]
    (changed / "images" / "L30-0.png").write_bytes(b"\x89PNG not really")
    listings.append(_listing(30, ["images/L30-0.png"]))
    _write_catalog(changed, listings, suppliers)
    # named as the importer names a bad row: the listings.csv line that lists the photo
    line = len(listings) + 1
    with pytest.raises(ImageDecodeError, match=rf"^listings\.csv:{line}: images: listing L30: "
                                               r".*L30-0\.png"):
        update_index(index, load_catalog(changed), embedder, progress=False)
    assert (len(index), index.listings(), dict(index.fingerprints)) == before


def test_every_broken_photo_is_named_in_one_error(catalog_dir, tmp_path):
    embedder = TinyPixelEmbedder()
    out = tmp_path / "index"
    build_index(load_catalog(catalog_dir), embedder, out=out, progress=False)
    saved = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    changed = _copy(catalog_dir, tmp_path / "changed")
    listings, suppliers = _rows(changed)
    for i, broken in ((30, b"\x89PNG not really"), (31, b""), (32, b"GIF89a junk")):
        (changed / "images" / f"L{i}-0.png").write_bytes(broken)
        listings.append(_listing(i, [f"images/L{i}-0.png"]))
    _write_catalog(changed, listings, suppliers)
    catalog = load_catalog(changed)
    for attempt in (lambda: build_index(catalog, embedder, out=out, progress=False),
                    lambda: update_index(open_index(out), catalog, embedder, progress=False)):
        with pytest.raises(CatalogPhotoError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith("3 catalog photos cannot be used:")
        assert len(caught.value.problems) == 3 and isinstance(caught.value, ImageDecodeError)
        for i, line in ((30, len(listings) - 1), (31, len(listings)), (32, len(listings) + 1)):
            assert f"listings.csv:{line}: images: listing L{i}: " in message
    # the saved index was not touched by either attempt
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == saved


def test_many_broken_photos_are_counted_past_those_written_out():
    error = CatalogPhotoError([f"listings.csv:{i}: images: bad" for i in range(2, 32)])
    lines = str(error).splitlines()
    assert lines[0] == "30 catalog photos cannot be used:"
    assert len(lines) == 1 + CatalogPhotoError.SHOWN + 1 and lines[-1] == "  ... and 10 more"


def test_catalog_fingerprint_detects_changes_and_ignores_row_order(catalog_dir, tmp_path):
    embedder = TinyPixelEmbedder()
    catalog = load_catalog(catalog_dir)
    index = build_index(catalog, embedder, progress=False)
    first = catalog_fingerprint(catalog)
    assert len(first) == 64 and index.catalog_fingerprint == first
    assert index_matches_catalog(index, catalog)

    reordered = _copy(catalog_dir, tmp_path / "reordered")
    listings, suppliers = _rows(reordered)
    _write_catalog(reordered, listings[::-1], suppliers[::-1])
    assert catalog_fingerprint(load_catalog(reordered)) == first

    repriced = _copy(catalog_dir, tmp_path / "repriced")
    listings, suppliers = _rows(repriced)
    listings[3]["price_min"] = "0.99"
    _write_catalog(repriced, listings, suppliers)
    repriced_catalog = load_catalog(repriced)
    assert catalog_fingerprint(repriced_catalog) != first
    listing = repriced_catalog.listings["L03"]
    assert listing_fingerprint(listing, repriced_catalog.suppliers[listing.supplier_id],
                               repriced_catalog) != index.fingerprints["L03"].listing

    repainted = _copy(catalog_dir, tmp_path / "repainted")
    _photo(repainted / "images" / "L00-0.png", "black", "ellipse", 0)
    repainted_catalog = load_catalog(repainted)
    assert catalog_fingerprint(repainted_catalog) != first
    assert not index_matches_catalog(index, repainted_catalog)
    update_index(index, repainted_catalog, embedder, progress=False)
    assert index_matches_catalog(index, repainted_catalog)


def test_update_refuses_an_index_built_with_another_embedder(catalog_dir):
    catalog = load_catalog(catalog_dir)
    index = build_index(catalog, TinyPixelEmbedder(), progress=False)

    class OtherEmbedder(TinyPixelEmbedder):
        name = "other"

    with pytest.raises(IndexMismatchError, match="rebuild"):
        update_index(index, catalog, OtherEmbedder(), progress=False)


def test_build_records_embedder_version_and_payloads(catalog_dir, tmp_path):
    catalog = load_catalog(catalog_dir)
    index = build_index(catalog, TinyPixelEmbedder(), tmp_path / "idx", progress=False)
    loaded = open_index(tmp_path / "idx", expected_embedder="tiny-pixels", expected_dim=48)
    assert loaded.embedder_version == "tiny-pixels-1"
    assert loaded.info["catalog"] == str(catalog_dir)
    payload = loaded.payload("L00")
    assert payload["supplier_kind"] == "factory" and payload["country"] == "CN"
    assert payload["certifications"] == ["CE", "ISO9001"] and payload["moq"] == 5
    assert payload["price_min"] == 2.0 and payload["category"] == "bags"
    assert len(loaded) == len(index) == sum(len(r.images) for r in catalog.listings.values())
