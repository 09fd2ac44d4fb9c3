"""The lone-query walk in C (``retrieval._walk``, built by ``setup.py``): on the answers it takes
it returns exactly what the Python walk returns, and it leaves every other answer (ties, an
unsettled head, a bad id or score) to the Python walk by returning ``None``."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval import faiss_index
from retrieval.faiss_index import FaissIndex
from retrieval.index import IndexRecord, ListingHit
from retrieval.payload_columns import PayloadColumns

c_walk = faiss_index.c_walk
pytestmark = pytest.mark.skipif(c_walk is None, reason="retrieval._walk was not compiled here")

# eight photos of five listings; row i's path is PATHS[i]
OWNERS = ["L0", "L1", "L0", "工厂-2", "L3", "L1", "L4", "L3"]
PATHS = [f"图/{i}.jpg" if i % 2 else f"p{i}.jpg" for i in range(len(OWNERS))]


def _columns() -> PayloadColumns:
    columns = PayloadColumns()
    columns.append((path, {"listing_id": owner}) for path, owner in zip(PATHS, OWNERS))
    return columns


def _answer(rows: list[int], scores: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray([scores], np.float32), np.asarray([rows], np.int64))


def _walk(columns: PayloadColumns, scores: np.ndarray, ids: np.ndarray, k: int):
    return c_walk.lone_hits(scores, ids, *columns.hit_columns(), k, ListingHit)


def test_best_photo_of_each_listing_best_first():
    columns = _columns()
    scores, ids = _answer([2, 0, 1, 5, 3, 4, 6, 7], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    hits = _walk(columns, scores, ids, 3)
    assert hits == [ListingHit("L0", float(np.float32(0.9)), "p2.jpg"),
                    ListingHit("L1", float(np.float32(0.7)), "图/1.jpg"),
                    ListingHit("工厂-2", float(np.float32(0.5)), "图/3.jpg")]
    assert all(type(hit) is ListingHit for hit in hits)


def test_what_it_leaves_to_the_python_walk():
    columns = _columns()
    falling = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    rows = [2, 0, 1, 5, 3, 4, 6, 7]
    assert _walk(columns, *_answer(rows, falling), 3) is not None
    # equal scores among the kept listings (ties go by listing id)
    assert _walk(columns, *_answer(rows, [0.9, 0.8, 0.7, 0.6, 0.7, 0.4, 0.3, 0.2]), 3) is None
    # a listing tied with the k-th one
    assert _walk(columns, *_answer([2, 1, 3, 4, 6], [0.9, 0.7, 0.5, 0.5, 0.1]), 3) is None
    # the first 2k photos hold fewer than k listings, or nothing below the k-th
    assert _walk(columns, *_answer([0, 2, 1, 5], [0.9, 0.8, 0.7, 0.6]), 3) is None
    assert _walk(columns, *_answer([0, 1, 3], [0.9, 0.8, 0.7]), 3) is None
    # an id outside the columns (-1 pads a short answer), a NaN score
    assert _walk(columns, *_answer([0, 1, -1, 3, 4, 5, 6, 7], falling), 3) is None
    assert _walk(columns, *_answer([0, 1, 99, 3, 4, 5, 6, 7], falling), 3) is None
    assert _walk(columns, *_answer(rows, [0.9, float("nan"), *falling[2:]]), 3) is None


def test_wrong_arguments_are_refused():
    columns = _columns()
    scores, ids = _answer([0, 1, 3, 4], [0.9, 0.8, 0.7, 0.6])
    codes, names, images = columns.hit_columns()
    with pytest.raises(TypeError):
        c_walk.lone_hits(scores.astype(np.float64), ids, codes, names, images, 2, ListingHit)
    with pytest.raises(TypeError):
        c_walk.lone_hits(scores, ids.astype(np.int32), codes, names, images, 2, ListingHit)
    with pytest.raises(TypeError):
        c_walk.lone_hits(scores, ids, codes.astype(np.int64), names, images, 2, ListingHit)
    with pytest.raises(TypeError):
        c_walk.lone_hits(scores, ids, codes, names, codes, 2, ListingHit)
    with pytest.raises(TypeError):  # the hits must be plain tuple subclasses
        c_walk.lone_hits(scores, ids, codes, names, images, 2, dict)
    with pytest.raises(ValueError):  # every buffer is read in place: no strided views
        c_walk.lone_hits(np.repeat(scores, 2, axis=1)[:, ::2], ids, codes, names, images, 2,
                         ListingHit)


def _index(kind: str, coarse: bool, n: int = 1200, dim: int = 16) -> tuple[FaissIndex,
                                                                          np.ndarray]:
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    if coarse:  # few distinct values: equal scores everywhere
        vectors = np.round(vectors)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-6)
    records = [IndexRecord(f"L{i // 3:04d}", f"p{i}.jpg", {}) for i in range(n)]
    index = FaissIndex("test", dim, index_type=kind, nlist=24, nprobe=4)
    if kind == "ivf":
        index.train(vectors)
    index.add(records, vectors)
    index.compact()
    return index, vectors[rng.integers(n, size=20)] + 0.2 * rng.standard_normal((20, dim)).astype(
        np.float32)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
@pytest.mark.parametrize("coarse", [False, True])
def test_searches_answer_as_with_the_python_walk(kind, coarse, monkeypatch):
    index, queries = _index(kind, coarse)
    calls = {"answered": 0, "left": 0}
    real = c_walk.lone_hits

    def counted(*args):
        hits = real(*args)
        calls["answered" if hits is not None else "left"] += 1
        return hits

    for k in (1, 3, 10, 60, 400):
        monkeypatch.setattr(faiss_index.c_walk, "lone_hits", counted)
        with_c = [index.search(query, k=k) for query in queries]
        monkeypatch.setattr(faiss_index, "c_walk", None)
        in_python = [index.search(query, k=k) for query in queries]
        monkeypatch.undo()
        assert with_c == in_python
    assert calls["answered"] > 0
    if coarse and kind == "flat":  # exact scores of rounded vectors: ties in every answer
        assert calls["left"] > 0  # they went to the Python walk
