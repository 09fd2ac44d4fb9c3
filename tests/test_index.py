"""Image index: build, save, load, search, and the checks that protect an existing index."""

import json

import numpy as np
import pytest

from retrieval.index import ImageIndex, IndexEntry, IndexMismatchError, IndexNotFoundError


def _index(dim=8, n=6, name="fake-embedder"):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # listing L1 has two photos (rows 0 and 1), the others one each
    entries = [IndexEntry("L1", "a.jpg"), IndexEntry("L1", "b.jpg")] + [
        IndexEntry(f"L{i}", f"{i}.jpg") for i in range(2, n)]
    return ImageIndex(name, dim, entries, vectors), vectors


def test_search_returns_listings_scored_by_their_best_photo():
    index, vectors = _index()
    hits = index.search(vectors[1], k=3)
    assert hits[0].listing_id == "L1" and hits[0].image == "b.jpg"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert len({hit.listing_id for hit in hits}) == len(hits) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_listing_scores_are_exact_inner_products():
    index, vectors = _index()
    scores = index.listing_scores(vectors[3], {"L1", "L3"})
    assert scores["L3"].score == pytest.approx(1.0, abs=1e-5)
    expected = max(float(vectors[0] @ vectors[3]), float(vectors[1] @ vectors[3]))
    assert scores["L1"].score == pytest.approx(expected, abs=1e-5)


def test_save_and_load_round_trip(tmp_path):
    index, vectors = _index()
    index.save(tmp_path / "idx")
    loaded = ImageIndex.load(tmp_path / "idx", expected_embedder="fake-embedder", expected_dim=8)
    assert len(loaded) == len(index)
    assert [h.listing_id for h in loaded.search(vectors[4], 3)] == \
        [h.listing_id for h in index.search(vectors[4], 3)]
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    assert meta["embedder"] == "fake-embedder" and meta["dim"] == 8 and meta["count"] == 6


def test_load_refuses_another_embedder_or_dimension(tmp_path):
    index, _ = _index()
    index.save(tmp_path / "idx")
    with pytest.raises(IndexMismatchError, match="descriptor-v1"):
        ImageIndex.load(tmp_path / "idx", expected_embedder="descriptor-v1")
    with pytest.raises(IndexMismatchError, match="dimension"):
        ImageIndex.load(tmp_path / "idx", expected_embedder="fake-embedder", expected_dim=16)


def test_missing_index_names_the_command_to_build_it(tmp_path):
    with pytest.raises(IndexNotFoundError, match="sourcing index build"):
        ImageIndex.load(tmp_path / "nothing")


def test_save_replaces_an_existing_index_and_leaves_no_staging_folders(tmp_path):
    old, _ = _index(n=4)
    old.save(tmp_path / "idx")
    new, _ = _index(n=7)
    new.save(tmp_path / "idx")
    assert len(ImageIndex.load(tmp_path / "idx")) == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_a_failed_save_leaves_the_existing_index_untouched(tmp_path, monkeypatch):
    old, _ = _index(n=4)
    old.save(tmp_path / "idx")
    before = (tmp_path / "idx" / "meta.json").read_bytes()
    new, _ = _index(n=7)
    import retrieval.index as module

    def broken_swap(staging, target):
        raise OSError("disk full")

    monkeypatch.setattr(module, "_swap_in", broken_swap)
    with pytest.raises(OSError, match="disk full"):
        new.save(tmp_path / "idx")
    assert (tmp_path / "idx" / "meta.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_add_checks_vector_shape():
    index = ImageIndex("fake", 4)
    with pytest.raises(ValueError, match="shape"):
        index.add([IndexEntry("L1", "a.jpg")], np.zeros((1, 5), dtype=np.float32))
    assert index.search(np.zeros(4), 3) == []
