"""Image index: the same suite runs over every backend (exact FAISS, HNSW, IVF, Qdrant local):
search per listing, filters inside the search, delete, exact re-scoring, save/load and the
checks that protect an existing index. Then what is FAISS-specific: index type selection,
HNSW tombstones, and the recall of the approximate structures."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from retrieval.filters import SearchFilter, passes
from retrieval.index import (
    ImageIndex,
    IndexEntry,
    IndexMismatchError,
    IndexNotFoundError,
    IndexRecord,
    ListingFingerprint,
    create_index,
    open_index,
)

BACKENDS = ("faiss-flat", "faiss-hnsw", "faiss-ivf", "qdrant-local")
EMBEDDER = "fake-embedder"


def _new(backend: str, dim: int = 8, name: str = EMBEDDER, **options):
    if backend == "qdrant-local":
        return create_index("qdrant", name, dim, **options)
    kind = backend.removeprefix("faiss-")
    if kind != "flat":
        # exact_below=0: filtered searches go through the approximate structure's selector
        options = {"exact_below": 0, **options}
    return create_index("faiss", name, dim, index_type=kind, **options)


@pytest.fixture(params=BACKENDS)
def make_index(request):
    """A factory of empty indexes of one backend; every index made is closed afterwards."""
    made = []

    def make(dim: int = 8, name: str = EMBEDDER, **options):
        index = _new(request.param, dim, name, **options)
        made.append(index)
        return index

    make.backend = request.param
    yield make
    for index in made:
        index.close()


def _unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _small(make, n=6, dim=8):
    """Listing L1 has two photos (rows 0 and 1), the others one each."""
    vectors = _unit(np.random.default_rng(0).normal(size=(n, dim)))
    records = [IndexRecord("L1", "a.jpg"), IndexRecord("L1", "b.jpg")] + [
        IndexRecord(f"L{i}", f"{i}.jpg") for i in range(2, n)]
    index = make(dim)
    index.add(records, vectors)
    return index, vectors


# -- payloads for the filter tests ---------------------------------------------------------------

SUPPLIERS = {
    "S1": {"supplier_kind": "factory", "country": "CN", "certifications": ["CE", "ISO9001"],
           "capabilities": ["oem", "small_batch"]},
    "S2": {"supplier_kind": "trading_company", "country": "vn", "certifications": ["ce"],
           "capabilities": ["Dropship"]},
    "S3": {"supplier_kind": None, "country": None, "certifications": [], "capabilities": []},
}


def _payload(i: int) -> dict:
    supplier = f"S{i % 3 + 1}"
    return {"supplier_id": supplier, **SUPPLIERS[supplier],
            "product_id": f"P{i % 4}" if i % 5 else None,
            "category": ("bags", "watches", None)[i % 3 if i % 7 else 2],
            "moq": None if i % 11 == 0 else (i * 7) % 120,
            "price_min": None if i % 13 == 0 else round(1.5 + (i * 3.7) % 20, 2)}


def _filter_data(make, n_listings=40, dim=8):
    rng = np.random.default_rng(1)
    vectors = _unit(rng.normal(size=(2 * n_listings, dim)))
    records = [IndexRecord(f"L{i:03d}", f"L{i:03d}-{j}.jpg", _payload(i))
               for i in range(n_listings) for j in range(2)]
    index = make(dim)
    index.add(records, vectors)
    return index, vectors, records


FILTERS = {
    "categories": SearchFilter(categories=("bags",)),
    "supplier_kind": SearchFilter(supplier_kind="factory"),
    "max_moq": SearchFilter(max_moq=50),
    "max_unit_price": SearchFilter(max_unit_price=9.5),
    "certifications": SearchFilter(certifications=("ce", "iso9001")),
    "capabilities": SearchFilter(capabilities=("oem",)),
    "capabilities, any case": SearchFilter(capabilities=("DROPSHIP",)),
    "countries": SearchFilter(countries=("vn", "US")),
    "supplier_ids": SearchFilter(supplier_ids=("S2", "S3")),
    "product_ids": SearchFilter(product_ids=("P1",)),
    "combined": SearchFilter(categories=("bags", "watches"), max_moq=80, countries=("CN",)),
    "nothing passes": SearchFilter(certifications=("BSCI",)),
}


# -- the suite every backend passes --------------------------------------------------------------


def test_search_returns_listings_scored_by_their_best_photo(make_index):
    index, vectors = _small(make_index)
    hits = index.search(vectors[1], k=3)
    assert hits[0].listing_id == "L1" and hits[0].image == "b.jpg"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert len({hit.listing_id for hit in hits}) == len(hits) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(index) == 6 and index.listings() == {"L1", "L2", "L3", "L4", "L5"}


def test_many_photos_of_one_listing_do_not_crowd_out_the_others(make_index):
    # 300 photos of L-big lie next to the query: the search keeps fetching until it has k
    rng = np.random.default_rng(2)
    query = _unit(rng.normal(size=(1, 16)))[0]
    near = _unit(query + 0.05 * rng.normal(size=(300, 16)))
    far = _unit(rng.normal(size=(40, 16)))
    index = make_index(16)
    index.add([IndexRecord("L-big", f"{i}.jpg") for i in range(300)]
              + [IndexRecord(f"L{i:02d}", "x.jpg") for i in range(40)], np.vstack([near, far]))
    hits = index.search(query, k=5)
    assert hits[0].listing_id == "L-big" and len({h.listing_id for h in hits}) == 5
    expected = sorted(((float(far[i] @ query), f"L{i:02d}") for i in range(40)), reverse=True)
    assert [h.listing_id for h in hits[1:]] == [lid for _, lid in expected[:4]]


def test_adding_a_photo_again_replaces_it(make_index):
    index, vectors = _small(make_index)
    index.add([IndexRecord("L3", "3.jpg")], vectors[4:5])
    assert len(index) == 6
    assert index.listing_scores(vectors[4], {"L3"})["L3"].score == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", FILTERS)
def test_each_filter_field_returns_exactly_the_passing_listings(make_index, name):
    index, vectors, records = _filter_data(make_index)
    search_filter = FILTERS[name]
    expected = {r.listing_id for r in records if passes(r.full_payload(), search_filter)}
    hits = index.search(vectors[0], k=100, filter=search_filter)
    assert {h.listing_id for h in hits} == expected
    if name == "nothing passes":
        assert hits == []


def test_unknown_values_fail_the_filter_on_that_field(make_index):
    index, vectors, records = _filter_data(make_index)
    unknown_moq = {r.listing_id for r in records if r.payload["moq"] is None}
    unknown_kind = {r.listing_id for r in records if r.payload["supplier_kind"] is None}
    assert unknown_moq and unknown_kind
    returned = {h.listing_id for h in index.search(vectors[0], 100, SearchFilter(max_moq=10**6))}
    assert returned and not returned & unknown_moq
    returned = {h.listing_id for h in index.search(vectors[0], 100,
                                                   SearchFilter(supplier_kind="factory"))}
    assert returned and not returned & unknown_kind


def test_a_filtered_search_returns_the_best_passing_listings_not_a_filtered_top_k(make_index):
    """The 30 listings nearest the query all have MOQ 500; the ones that pass (MOQ <= 50) lie
    farther away, so filtering an unfiltered top k would leave nothing."""
    rng = np.random.default_rng(3)
    dim, k = 16, 8
    query = _unit(rng.normal(size=(1, dim)))[0]
    near = _unit(query + 0.2 * rng.normal(size=(60, dim)))  # 30 listings x 2 photos
    far = _unit(query + 1.5 * rng.normal(size=(60, dim)))
    records = [IndexRecord(f"N{i // 2:02d}", f"n{i}.jpg", {"moq": 500}) for i in range(60)]
    records += [IndexRecord(f"F{i // 2:02d}", f"f{i}.jpg", {"moq": 10 + i % 40})
                for i in range(60)]
    index = make_index(dim)
    index.add(records, np.vstack([near, far]))

    unfiltered = index.search(query, k)
    assert all(h.listing_id.startswith("N") for h in unfiltered)
    hits = index.search(query, k, filter=SearchFilter(max_moq=50))
    assert len(hits) == k and all(h.listing_id.startswith("F") for h in hits)
    scores = far @ query
    best = {}
    for row, score in enumerate(scores):
        listing = f"F{row // 2:02d}"
        best[listing] = max(best.get(listing, -2.0), float(score))
    expected = sorted(best, key=lambda lid: -best[lid])[:k]
    assert [h.listing_id for h in hits] == expected
    assert [h.score for h in hits] == pytest.approx([best[lid] for lid in expected], abs=1e-5)


def test_delete_removes_every_photo_of_the_listings(make_index):
    index, vectors = _small(make_index)
    assert index.delete(["L1", "nope"]) == 2
    assert len(index) == 4 and "L1" not in index.listings()
    assert all(h.listing_id != "L1" for h in index.search(vectors[0], k=10))
    assert index.listing_scores(vectors[0], {"L1"}) == {}
    assert index.delete([]) == 0 and index.delete(["L1"]) == 0


def test_group_scores_average_every_photo_of_the_product(make_index):
    vectors = _unit(np.random.default_rng(1).normal(size=(6, 8)))
    # P1 is listed twice (L1 with two photos, L2 with one); L3 has no product id; L4 is P2
    records = [IndexRecord("L1", "a.jpg", {"product_id": "P1"}),
               IndexRecord("L1", "b.jpg", {"product_id": "P1"}),
               IndexRecord("L2", "c.jpg", {"product_id": "P1"}),
               IndexRecord("L3", "d.jpg"), IndexRecord("L3", "e.jpg"),
               IndexRecord("L4", "f.jpg", {"product_id": "P2"})]
    index = make_index(8)
    index.add(records, vectors)
    query = vectors[0]
    scores = index.group_scores(query, {"L2", "L3", "unknown"})
    assert set(scores) == {"L2", "L3"}
    # L2 scores on all three photos of P1, though only one of them is its own
    assert scores["L2"] == pytest.approx(float(np.mean(vectors[:3] @ query)), abs=1e-5)
    # without a product id the group is the listing's own photos
    assert scores["L3"] == pytest.approx(float(np.mean(vectors[3:5] @ query)), abs=1e-5)
    assert index.group_scores(query, []) == {}


def test_listing_scores_are_exact_inner_products(make_index):
    index, vectors = _small(make_index)
    scores = index.listing_scores(vectors[3], {"L1", "L3", "unknown"})
    assert set(scores) == {"L1", "L3"}
    assert scores["L3"].score == pytest.approx(1.0, abs=1e-5)
    expected = max(float(vectors[0] @ vectors[3]), float(vectors[1] @ vectors[3]))
    assert scores["L1"].score == pytest.approx(expected, abs=1e-5)


def test_update_payloads_changes_what_filters_see(make_index):
    index, vectors, records = _filter_data(make_index)
    factory = SearchFilter(supplier_kind="factory")
    assert "L001" not in {h.listing_id for h in index.search(vectors[0], 100, factory)}
    assert index.update_payloads({"L001": {**records[2].payload, "supplier_kind": "factory"}}) == 2
    assert "L001" in {h.listing_id for h in index.search(vectors[0], 100, factory)}
    assert index.payload("L001")["supplier_kind"] == "factory"


def test_save_and_load_round_trip(make_index, tmp_path):
    index, vectors, _ = _filter_data(make_index)
    index.fingerprints = {"L000": ListingFingerprint("a" * 64, "b" * 64)}
    index.catalog_fingerprint = "c" * 64
    index.save(tmp_path / "idx")
    loaded = open_index(tmp_path / "idx", expected_embedder=EMBEDDER, expected_dim=8)
    try:
        assert type(loaded) is type(index) and len(loaded) == len(index)
        assert loaded.listings() == index.listings()
        for search_filter in (None, FILTERS["combined"], FILTERS["certifications"]):
            assert loaded.search(vectors[5], 7, search_filter) == \
                index.search(vectors[5], 7, search_filter)
        assert loaded.fingerprints == index.fingerprints
        assert loaded.catalog_fingerprint == "c" * 64
    finally:
        loaded.close()
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    assert meta["embedder"] == EMBEDDER and meta["dim"] == 8 and meta["count"] == 80
    assert meta["format_version"] == 2 and meta["listing_count"] == 40
    assert meta["backend"] == make_index.backend.split("-")[0]
    assert meta["embedder_version"] == EMBEDDER and meta["created_at"]
    assert meta["listing_fingerprints"] == {"L000": ["a" * 64, "b" * 64]}


def test_image_index_load_opens_any_backend(make_index, tmp_path):
    index, vectors = _small(make_index)
    index.save(tmp_path / "idx")
    loaded = ImageIndex.load(tmp_path / "idx", expected_embedder=EMBEDDER, expected_dim=8)
    try:
        assert loaded.backend == index.backend
        assert loaded.search(vectors[2], 3) == index.search(vectors[2], 3)
    finally:
        loaded.close()


def test_load_refuses_another_embedder_or_dimension(make_index, tmp_path):
    index, _ = _small(make_index)
    index.save(tmp_path / "idx")
    with pytest.raises(IndexMismatchError, match="descriptor-v1"):
        open_index(tmp_path / "idx", expected_embedder="descriptor-v1")
    with pytest.raises(IndexMismatchError, match="dimension"):
        open_index(tmp_path / "idx", expected_embedder=EMBEDDER, expected_dim=16)


def test_save_replaces_an_existing_index_and_leaves_no_staging_folders(make_index, tmp_path):
    old, _ = _small(make_index, n=4)
    old.save(tmp_path / "idx")
    new, _ = _small(make_index, n=7)
    new.save(tmp_path / "idx")
    loaded = open_index(tmp_path / "idx")
    assert len(loaded) == 7
    loaded.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_a_failed_save_leaves_the_existing_index_untouched(make_index, tmp_path, monkeypatch):
    old, _ = _small(make_index, n=4)
    old.save(tmp_path / "idx")
    before = {p.relative_to(tmp_path): p.read_bytes()
              for p in (tmp_path / "idx").rglob("*") if p.is_file()}
    new, _ = _small(make_index, n=7)
    import retrieval.index as module

    def broken_swap(staging, target):
        raise OSError("disk full")

    monkeypatch.setattr(module, "_swap_in", broken_swap)
    with pytest.raises(OSError, match="disk full"):
        new.save(tmp_path / "idx")
    after = {p.relative_to(tmp_path): p.read_bytes()
             for p in (tmp_path / "idx").rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]
    monkeypatch.undo()
    loaded = open_index(tmp_path / "idx")
    assert len(loaded) == 4
    loaded.close()


def test_add_checks_vector_shape(make_index):
    index = make_index(4)
    with pytest.raises(ValueError, match="shape"):
        index.add([IndexRecord("L1", "a.jpg")], np.zeros((1, 5), dtype=np.float32))
    assert index.search(np.zeros(4), 3) == []
    with pytest.raises(IndexMismatchError, match="dimension"):
        index.search(np.zeros(5), 3)


# -- backend-independent checks ------------------------------------------------------------------


def test_missing_index_names_the_command_to_build_it(tmp_path):
    with pytest.raises(IndexNotFoundError, match="sourcing index build"):
        open_index(tmp_path / "nothing")
    with pytest.raises(IndexNotFoundError, match="sourcing index build"):
        ImageIndex.load(tmp_path / "nothing")


def test_an_index_of_the_previous_format_asks_for_a_rebuild(tmp_path):
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "meta.json").write_text(json.dumps(
        {"format_version": 1, "embedder": EMBEDDER, "dim": 8, "entries": []}))
    with pytest.raises(IndexMismatchError, match="rebuild"):
        open_index(tmp_path / "idx", expected_embedder=EMBEDDER)


def test_image_index_keeps_its_historical_constructor():
    vectors = _unit(np.eye(3) + 0.01)
    index = ImageIndex("fake", 3, [IndexEntry("A", "a.jpg"), IndexEntry("A", "b.jpg"),
                                   IndexEntry("B", "c.jpg")], vectors)
    assert [h.listing_id for h in index.search(vectors[1], 5)] == ["A", "B"]
    assert index.search(vectors[1], 1)[0].image == "b.jpg"


def test_search_filter_from_dict_names_unknown_keys_and_normalises():
    with pytest.raises(ValueError, match="max_mqo.*known: categories"):
        SearchFilter.from_dict({"max_mqo": 50})
    with pytest.raises(ValueError, match="max_moq: must not be negative"):
        SearchFilter.from_dict({"max_moq": -1})
    with pytest.raises(ValueError, match="max_unit_price: expected a number"):
        SearchFilter.from_dict({"max_unit_price": "cheap"})
    parsed = SearchFilter.from_dict({"certifications": "ce|iso9001", "countries": ["cn"],
                                     "max_moq": "50", "supplier_kind": None})
    assert parsed.certifications == ("CE", "ISO9001") and parsed.countries == ("CN",)
    assert parsed.max_moq == 50 and not parsed.is_empty
    assert SearchFilter.from_dict(None).is_empty and SearchFilter.from_dict({}).is_empty
    assert SearchFilter.from_dict(parsed.as_dict()) == parsed


def test_create_index_refuses_unknown_backends_and_types():
    with pytest.raises(ValueError, match="known: faiss, qdrant"):
        create_index("annoy", EMBEDDER, 8)
    with pytest.raises(ValueError, match="known: auto, flat, hnsw, ivf"):
        create_index("faiss", EMBEDDER, 8, index_type="lsh")


# -- FAISS specifics -----------------------------------------------------------------------------


def _random_unit(n, dim, seed):
    return _unit(np.random.default_rng(seed).normal(size=(n, dim)))


def test_auto_index_type_is_exact_below_the_threshold_and_hnsw_above(tmp_path):
    vectors = _random_unit(300, 8, 4)
    records = [IndexRecord(f"L{i}", f"{i}.jpg") for i in range(300)]
    small = create_index("faiss", EMBEDDER, 8, hnsw_threshold=1000)
    small.add(records, vectors)
    small.save(tmp_path / "small")
    assert small.index_type == "flat"
    large = create_index("faiss", EMBEDDER, 8, hnsw_threshold=200)
    large.add(records, vectors)
    assert large.index_type == "flat"  # decided when built or saved, not on every add
    large.save(tmp_path / "large")
    assert large.index_type == "hnsw"
    assert json.loads((tmp_path / "large" / "meta.json").read_text())["index_type"] == "hnsw"
    loaded = open_index(tmp_path / "large")
    assert loaded.index_type == "hnsw"
    assert loaded.search(vectors[7], 1)[0].listing_id == "L7"


def test_hnsw_deletes_are_tombstones_until_the_index_is_saved(tmp_path):
    vectors = _random_unit(200, 8, 5)
    index = create_index("faiss", EMBEDDER, 8, index_type="hnsw")
    index.add([IndexRecord(f"L{i}", f"{i}.jpg") for i in range(200)], vectors)
    assert index.search(vectors[3], 1)[0].listing_id == "L3"
    assert index.delete(["L3", "L4"]) == 2
    assert index.tombstones == 2 and len(index) == 198
    assert all(h.listing_id not in {"L3", "L4"} for h in index.search(vectors[3], 20))
    index.save(tmp_path / "idx")
    assert index.tombstones == 0
    loaded = open_index(tmp_path / "idx")
    assert len(loaded) == 198 and "L3" not in loaded.listings()
    index.add([IndexRecord("L3", "3.jpg")], vectors[3:4])  # ids stay unique after compaction
    assert index.search(vectors[3], 1)[0].listing_id == "L3" and len(index) == 199


@pytest.mark.parametrize("kind, options", [("hnsw", {}), ("ivf", {"nprobe": 160})])
def test_approximate_recall_at_10_against_exact_search(kind, options):
    """5,000 random unit vectors in 64 dimensions, no cluster structure: the hard case.
    IVF (nlist ~ 4 * sqrt(n) = 283) needs about half its lists probed on such data."""
    vectors = _random_unit(5000, 64, 6)
    queries = _random_unit(100, 64, 7)
    records = [IndexRecord(f"L{i:04d}", f"{i}.jpg") for i in range(5000)]
    exact = create_index("faiss", EMBEDDER, 64, index_type="flat")
    exact.add(records, vectors)
    approximate = create_index("faiss", EMBEDDER, 64, index_type=kind, **options)
    approximate.add(records, vectors)
    approximate.compact()
    assert approximate.index_type == kind
    started = time.perf_counter()
    found = [{h.listing_id for h in approximate.search(q, 10)} for q in queries]
    per_query_ms = (time.perf_counter() - started) * 1000 / len(queries)
    truth = [{h.listing_id for h in exact.search(q, 10)} for q in queries]
    recall = np.mean([len(a & b) / 10 for a, b in zip(found, truth)])
    assert recall >= 0.95, f"{kind} recall@10 {recall:.3f} ({per_query_ms:.2f} ms/query)"


# -- Qdrant server layout (a local client stands in for the server) ----------------------------


def test_qdrant_server_builds_switch_an_alias_atomically(tmp_path, monkeypatch):
    from qdrant_client import QdrantClient

    import retrieval.index as index_module
    import retrieval.qdrant_index as qdrant_module

    server = QdrantClient(":memory:")
    monkeypatch.setattr(qdrant_module, "_connect", lambda url, api_key: server)
    url = "http://qdrant.internal:6333"

    def build(n):
        index = create_index("qdrant", EMBEDDER, 8, url=url, collection="photos",
                             shard_number=2, replication_factor=2)
        index.add([IndexRecord(f"L{i}", f"{i}.jpg", {"moq": i}) for i in range(n)],
                  _random_unit(n, 8, n))
        return index

    def collections():
        return {c.name for c in server.get_collections().collections}

    def aliased():
        return {a.alias_name: a.collection_name for a in server.get_aliases().aliases}

    first = build(4)
    first.save(tmp_path / "idx")
    assert aliased() == {"photos": first.physical} and collections() == {first.physical}
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())["qdrant"]
    assert meta["mode"] == "server" and meta["collection"] == "photos"
    assert meta["shard_number"] == 2 and meta["replication_factor"] == 2
    assert not (tmp_path / "idx" / "qdrant").exists()  # the vectors live on the server

    reader = open_index(tmp_path / "idx", EMBEDDER, 8, qdrant_url=url)
    second = build(7)
    assert len(reader) == 4  # a build in progress is invisible to readers
    second.save(tmp_path / "idx")
    assert len(reader) == 7  # readers follow the alias to the new collection
    assert aliased() == {"photos": second.physical} and collections() == {second.physical}

    def broken_swap(staging, target):
        raise OSError("disk full")

    third = build(9)
    monkeypatch.setattr(index_module, "_swap_in", broken_swap)
    with pytest.raises(OSError, match="disk full"):
        third.save(tmp_path / "idx")
    assert aliased() == {"photos": second.physical} and len(reader) == 7
    third.discard()  # what build_index does when a build fails
    assert collections() == {second.physical}
    assert len(open_index(tmp_path / "idx")) == 7  # meta.json remembers the server URL


@pytest.mark.parametrize("umask, folder_mode, file_mode",
                         [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_a_saved_index_and_its_features_file_are_readable_by_other_users(
        make_index, tmp_path, umask, folder_mode, file_mode):
    """Staged with mkdtemp / mkstemp (0700 / 0600), they get the modes a plain mkdir and open
    would give under the umask: a server running as another user than the one who built the
    index can read both."""
    import os
    import stat

    from retrieval.feature_store import recipe, write_features

    index, _ = _small(make_index)
    previous = os.umask(umask)
    try:
        index.save(tmp_path / "idx")
        index.save(tmp_path / "idx")  # replacing an existing index too
        write_features(tmp_path / "idx.rerank-features.npz", recipe("any-reranker"), {})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "idx").stat().st_mode) == folder_mode
    assert stat.S_IMODE((tmp_path / "idx.rerank-features.npz").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "idx" / "meta.json").stat().st_mode) == file_mode
