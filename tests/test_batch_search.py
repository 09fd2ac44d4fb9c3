"""Searching several query vectors in one call answers exactly what one search per vector does:
on every FAISS structure, with and without filters, with tombstones, and when a row needs more
photos than the first round fetched; and ``search_images`` merges the same hits either way."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from retrieval.faiss_index import FaissIndex
from retrieval.filters import SearchFilter
from retrieval.index import IndexRecord
from retrieval.search import VIEWS, query_views, search_images

FILTERS = (None, SearchFilter(max_moq=30), SearchFilter(supplier_kind="factory", max_moq=80))


def _data(n: int, dim: int, seed: int = 3) -> tuple[list[IndexRecord], np.ndarray, np.ndarray]:
    """``n`` photos (three per listing) around 40 centres, and 12 queries near some of them."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim)).astype(np.float32)
    vectors = centres[rng.integers(40, size=n)] + 0.6 * rng.standard_normal((n, dim),
                                                                             dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records = [IndexRecord(f"L{i // 3:05d}", f"p{i}.jpg", {
        "moq": i % 100, "supplier_kind": "factory" if i % 5 else "trading_company"})
        for i in range(n)]
    queries = vectors[rng.integers(n, size=12)] + 0.4 * rng.standard_normal((12, dim),
                                                                             dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return records, vectors, queries


def _index(kind: str, n: int, dim: int, **options) -> tuple[FaissIndex, np.ndarray]:
    records, vectors, queries = _data(n, dim)
    index = FaissIndex("test", dim, index_type=kind, **options)
    if kind == "ivf":
        index.train(vectors[:2000])
    elif kind == "hnsw":
        index.train()
    index.add(records, vectors)
    index.compact()
    return index, queries


@pytest.mark.parametrize("kind, n, options", [
    ("flat", 1500, {}),
    ("flat", 12_000, {}),  # large enough for FAISS to score one query differently from several
    ("ivf", 6000, {"nlist": 64, "nprobe": 2, "exact_below": 100}),
    ("hnsw", 3000, {"exact_below": 100}),
])
@pytest.mark.parametrize("k", [10, 300])
def test_batch_answers_as_one_search_per_row(kind, n, options, k):
    index, queries = _index(kind, n, 32, **options)
    for search_filter in FILTERS:
        batch = index.search_batch(queries, k=k, filter=search_filter)
        single = [index.search(query, k=k, filter=search_filter) for query in queries]
        assert batch == single
        assert all(len(hits) == min(k, len(hits)) for hits in batch)
    assert index.search_batch(queries[:0], k=5) == []


def test_batch_after_deletes_and_on_an_empty_answer():
    index, queries = _index("hnsw", 3000, 16)
    index.delete([f"L{i:05d}" for i in range(0, 1000, 3)])  # tombstones in the graph
    assert index.tombstones > 0
    assert index.search_batch(queries, k=20) == [index.search(q, k=20) for q in queries]
    nobody = SearchFilter(supplier_ids=("nobody",))
    assert index.search_batch(queries, k=5, filter=nobody) == [[] for _ in queries]


def test_batch_refuses_a_wrong_dimension():
    index, queries = _index("flat", 300, 16)
    with pytest.raises(ValueError):
        index.search_batch(queries[:, :8], k=3)


class OneByOne:
    """The index seen through ``search`` only (as a backend without ``search_batch``); whole-
    product scores pass through."""

    def __init__(self, index) -> None:
        self._index = index

    def search(self, vector, k=10, filter=None):
        return self._index.search(vector, k=k, filter=filter)

    def group_scores(self, vector, listing_ids):
        return self._index.group_scores(vector, listing_ids)


class PixelEmbedder:
    """A deterministic stand-in embedder: the photo's colour means and a coarse thumbnail."""

    name, version, dim = "pixels", "1", 32

    def embed_images(self, images) -> np.ndarray:
        rows = []
        for image in images:
            small = np.asarray(image.convert("RGB").resize((3, 3)), np.float32).ravel()[:27]
            mean = np.asarray(image.convert("RGB"), np.float32).mean(axis=(0, 1))
            row = np.concatenate([small, mean, [1.0, 0.5]]).astype(np.float32)
            rows.append(row / np.linalg.norm(row))
        return np.stack(rows)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_search_images_merges_the_same_hits_batched_or_not(kind):
    embedder = PixelEmbedder()
    rng = np.random.default_rng(5)
    photos = [Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8))
              for _ in range(300)]
    vectors = embedder.embed_images(photos)
    records = [IndexRecord(f"L{i // 2:04d}", f"p{i}.jpg", {"moq": i % 60})
               for i in range(len(photos))]
    index = FaissIndex("pixels", embedder.dim, index_type=kind,
                       **({"nlist": 16, "nprobe": 4} if kind == "ivf" else {}))
    if kind == "ivf":
        index.train(vectors)
    index.add(records, vectors)
    for query in photos[:40:7]:
        vector = embedder.embed_images([query])[0]
        views = embedder.embed_images(query_views(query))
        assert len(views) == len(VIEWS)
        for search_filter in (None, SearchFilter(max_moq=20)):
            computed = search_images(index, vector, 12, search_filter, query_image=query,
                                     embedder=embedder)
            given = search_images(index, vector, 12, search_filter, view_vectors=views)
            one_by_one = search_images(OneByOne(index), vector, 12, search_filter,
                                       view_vectors=views)
            assert computed == given == one_by_one
            assert len(computed) == 12
