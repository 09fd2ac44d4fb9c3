"""Building large indexes in batches: the catalog's vectors go to the index one batch at a time,
an IVF index is trained up front and filled directly, payload columns are consolidated as rows
arrive."""

from __future__ import annotations

import numpy as np
import pytest

import retrieval.build as build
import retrieval.payload_columns as payload_columns
from data.catalog.importer import load_catalog
from retrieval.faiss_index import FaissIndex
from retrieval.filters import SearchFilter
from retrieval.index import IndexRecord, create_index
from tests.conftest import DEMO_CATALOG


class CountingEmbedder:
    """A real embedder (the descriptor) that notes how many vectors the index held at each call."""

    def __init__(self, index_holder: dict) -> None:
        from retrieval.embedders.descriptor import DescriptorEmbedder

        self._inner = DescriptorEmbedder()
        self.name, self.version, self.dim = self._inner.name, self._inner.version, self._inner.dim
        self.held_at_call: list[int] = []
        self._holder = index_holder

    def embed_images(self, images):
        self.held_at_call.append(len(self._holder["index"]))
        return self._inner.embed_images(images)


def test_build_hands_each_batch_to_the_index_before_embedding_the_next(monkeypatch, tmp_path):
    catalog = load_catalog(DEMO_CATALOG)
    keep = sorted(catalog.listings)[:9]
    catalog.listings = {lid: catalog.listings[lid] for lid in keep}
    holder: dict = {}

    def spying_create_index(*args, **kwargs):
        holder["index"] = create_index(*args, **kwargs)
        return holder["index"]

    monkeypatch.setattr(build, "create_index", spying_create_index)
    embedder = CountingEmbedder(holder)
    index = build.build_index(catalog, embedder, batch_size=4, progress=False)
    photos = sum(len(catalog.listings[lid].images) for lid in keep)
    assert len(index) == photos
    # call i sees exactly the i batches before it in the index: nothing is held back
    assert embedder.held_at_call == [min(4 * i, photos) for i in range(len(embedder.held_at_call))]


def _unit(rows):
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_trained_ivf_is_filled_directly_and_finds_what_exact_search_finds():
    rng = np.random.default_rng(3)
    centres = _unit(rng.standard_normal((20, 16)))
    vectors = _unit(centres[rng.integers(20, size=2000)] + 0.3 * rng.standard_normal((2000, 16)))
    records = [IndexRecord(f"L{i:04d}", f"images/{i}.jpg", {"moq": i % 500})
               for i in range(2000)]
    ivf = FaissIndex("e", 16, index_type="ivf", nlist=20, nprobe=20)
    ivf.train(vectors[:400])
    assert ivf.index_type == "ivf"
    for start in range(0, 2000, 500):
        ivf.add(records[start:start + 500], vectors[start:start + 500])
    structure = ivf._faiss
    ivf.compact()
    assert ivf._faiss is structure  # no rebuild
    flat = FaissIndex("e", 16, records, vectors, index_type="flat")
    query = vectors[7]
    moq = SearchFilter(max_moq=100)
    for search_filter in (None, moq):  # every list probed: the exact answer
        got, want = ivf.search(query, 10, search_filter), flat.search(query, 10, search_filter)
        assert [hit.listing_id for hit in got] == [hit.listing_id for hit in want]
        assert np.allclose([hit.score for hit in got], [hit.score for hit in want], atol=1e-5)


def test_train_refuses_a_filled_index_or_a_missing_sample():
    index = FaissIndex("e", 4, index_type="ivf")
    with pytest.raises(ValueError, match="training sample"):
        index.train(None)
    index.add([IndexRecord("L1", "a.jpg")], np.eye(4, dtype=np.float32)[:1])
    with pytest.raises(ValueError, match="empty index"):
        index.train(np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match="'hnsw' or 'ivf'"):
        FaissIndex("e", 4).train(np.eye(4, dtype=np.float32))


def test_payload_columns_consolidate_as_rows_arrive(monkeypatch):
    monkeypatch.setattr(payload_columns, "FLUSH_ROWS", 10)
    columns = payload_columns.PayloadColumns()
    for start in range(0, 35, 5):
        columns.append((f"{i}.jpg", {"listing_id": f"L{i}", "moq": i, "certifications": ["ce"]})
                       for i in range(start, start + 5))
        assert len(columns._pending) < 10
    assert len(columns) == 35
    assert columns.payload(33)["moq"] == 33 and columns.payload(33)["certifications"] == ["CE"]
    assert columns.mask(SearchFilter(max_moq=4)).sum() == 5
