"""The FAISS index aggregates photos per listing, merges the views' answers and averages product
groups on arrays. Each answer must be exactly the one of the per-row implementation it replaced
(kept here as ``PerRowIndex``: a walk over each answer's photos, one ``ListingHit`` per listing
and row, the merge and the group means in Python): on every FAISS structure, with filters, with
tombstones, with short answers that need more photos, and on data full of exact ties (the same
photo under several listings, coarse vectors)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from retrieval.faiss_index import (
    FLAT_SPLIT_MIN,
    MIN_FETCH,
    PHOTOS_PER_LISTING,
    FaissIndex,
    _batch_rows,
    _faiss_search,
    _one_faiss_thread,
)
from retrieval.filters import SearchFilter
from retrieval.index import IndexRecord, ListingHit, group_means, ranked
from retrieval.payload_columns import PayloadColumns
from retrieval.search import merge_hits, search_images

FILTERS = (None, SearchFilter(max_moq=30), SearchFilter(supplier_kind="factory", max_moq=80),
           SearchFilter(max_moq=2))
PENALTY = 0.05


class PerRowIndex(FaissIndex):
    """The per-row search, aggregation and group means as they were before the arrays."""

    def search(self, vector, k=10, filter=None):
        return self._old_rows(self._query(vector), k, filter)[0]

    def search_batch(self, vectors, k=10, filter=None):
        return self._old_rows(self._check_rows(vectors), k, filter)

    search_merged = None  # search_images merges the lists itself

    def _old_rows(self, queries, k, filter):
        size = len(self._columns)
        if k <= 0 or size == 0:
            return [[] for _ in range(len(queries))]
        self._settle_forced_type()
        passing = None
        if filter is not None and not filter.is_empty:
            passing = np.flatnonzero(self._columns.mask(filter))
            if passing.size == 0:
                return [[] for _ in range(len(queries))]
        n_pass = size if passing is None else int(passing.size)
        if passing is not None and self._type != "flat" and n_pass <= self.exact_below:
            return [self._old_exact(queries[i:i + 1], passing, k) for i in range(len(queries))]
        selector = keep_alive = None
        if passing is not None or self._tombstones:
            selector, keep_alive = self._selector(self._ids if passing is None
                                                  else self._ids[passing])
        fetch = min(n_pass, max(MIN_FETCH, k * PHOTOS_PER_LISTING))
        params = self._params(selector, fetch, self.nprobe)
        answers = []
        one_by_one = (len(queries) == 1 or self._type == "flat" and selector is None
                      and self._faiss.ntotal >= FLAT_SPLIT_MIN)
        group = 1 if one_by_one else _batch_rows(self.dim)
        for start in range(0, len(queries), group):
            chunk = queries[start:start + group]
            if len(chunk) > 1:
                with _one_faiss_thread():
                    scores, ids = self._faiss.search(chunk, fetch, params=params)
            else:
                scores, ids = self._faiss.search(chunk, fetch, params=params)
            for i in range(len(chunk)):
                answers.append(self._old_settle(chunk[i:i + 1], scores[i], ids[i], k, fetch,
                                                n_pass, passing, selector))
        del keep_alive
        return answers

    def _old_settle(self, query, scores, ids, k, fetch, n_pass, passing, selector):
        nprobe = self.nprobe
        while True:
            if ids.size and ids[-1] < 0:
                found = ids >= 0
                scores, ids = scores[found], ids[found]
            rows = self._rows_of_ids(ids)
            hits = self._old_aggregate(scores, rows, k, ordered=True)
            if len(hits) >= k or rows.size >= n_pass:
                return hits
            ran_dry = rows.size < fetch
            if ran_dry and self._type == "ivf" and nprobe < self._faiss.nlist:
                nprobe = min(self._faiss.nlist, nprobe * 2)
            elif ran_dry and fetch >= n_pass:
                return self._old_exact(query, passing, k)
            elif fetch >= n_pass:
                return hits
            else:
                fetch = min(n_pass, fetch * 2)
            answer = self._faiss.search(query, fetch, params=self._params(selector, fetch, nprobe))
            scores, ids = answer[0][0], answer[1][0]

    def _old_exact(self, query, rows, k):
        if rows is None:
            rows = np.arange(len(self._ids))
        scores = self._faiss.reconstruct_batch(self._ids[rows]) @ query[0]
        return self._old_aggregate(scores, rows, k)

    def _old_aggregate(self, scores, rows, k, ordered=False):
        if rows.size == 0:
            return []
        if not ordered:
            order = np.argsort(-scores, kind="stable")
            scores, rows = scores[order], rows[order]
        codes = self._columns.codes("listing_id")[rows].tolist()
        values = scores.tolist()
        seen: set[int] = set()
        positions: list[int] = []
        for position, code in enumerate(codes):
            if code in seen:
                continue
            if len(positions) >= k and values[position] < values[positions[k - 1]]:
                break
            seen.add(code)
            positions.append(position)
        best = [values[i] for i in positions]
        tied = len(set(best)) < len(best)
        if not tied:
            positions = positions[:k]
        names = self._columns.vocab["listing_id"]
        rows = rows.tolist()
        images = self._columns.images_at([rows[i] for i in positions])
        hits = [ListingHit(names[codes[i]], values[i], image)
                for i, image in zip(positions, images)]
        return ranked(hits, k) if tied else hits

    def group_scores(self, vector, listing_ids):
        query = self._query(vector)
        self._flush_ids()
        listing_ids = set(listing_ids)
        codes = self._columns.codes("listing_id")
        lookup = {name: code for code, name in enumerate(self._columns.vocab["listing_id"])}
        rows = np.flatnonzero(np.isin(codes, [lookup[lid] for lid in listing_ids
                                              if lid in lookup]))
        if rows.size == 0:
            return {}
        products = self._columns.codes("product_id")
        wanted = np.unique(products[rows])
        wanted = wanted[wanted >= 0]
        if wanted.size:
            rows = np.union1d(rows, np.flatnonzero(np.isin(products, wanted)))
        scores = self._faiss.reconstruct_batch(self._ids[rows]) @ query[0]
        listing_names = self._columns.vocab["listing_id"]
        product_names = self._columns.vocab["product_id"]
        return group_means([listing_names[c] for c in codes[rows]],
                           [product_names[c] if c >= 0 else None for c in products[rows]],
                           scores, listing_ids)


def per_row(index: FaissIndex) -> PerRowIndex:
    """The same index (shared state) answering the per-row way."""
    old = object.__new__(PerRowIndex)
    old.__dict__ = index.__dict__
    return old


def _data(n: int, dim: int, coarse: bool, seed: int) -> tuple[list[IndexRecord], np.ndarray]:
    """``n`` photos, two to four per listing, some listings sharing a product (some with none,
    two with an empty id, which is none), every tenth photo a copy of an earlier one under another listing (a
    trader's copy: exactly equal scores); ``coarse`` vectors (entries -1, 0, 1) tie often."""
    rng = np.random.default_rng(seed)
    if coarse:
        vectors = rng.integers(-1, 2, (n, dim)).astype(np.float32)
        vectors[:, 0] += 0.5  # no zero rows
    else:
        centres = rng.standard_normal((30, dim)).astype(np.float32)
        vectors = centres[rng.integers(30, size=n)] + 0.7 * rng.standard_normal(
            (n, dim)).astype(np.float32)
    copies = np.arange(10, n, 10)
    vectors[copies] = vectors[rng.integers(0, 10, copies.size)]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records, listing = [], 0
    while len(records) < n:
        product = (None if listing % 4 == 0 else "" if listing in (5, 6)
                   else f"P{listing // 3:04d}")
        for _ in range(int(rng.integers(2, 5))):
            if len(records) == n:
                break
            i = len(records)
            records.append(IndexRecord(f"L{listing:05d}", f"p{i}.jpg", {
                "moq": int(rng.integers(0, 100)), "product_id": product,
                "supplier_kind": "factory" if listing % 5 else "trading_company"}))
        listing += 1
    return records, vectors


def _index(kind: str, coarse: bool, seed: int = 1, n: int = 1500, dim: int = 24,
           **options: Any) -> tuple[FaissIndex, np.ndarray]:
    records, vectors = _data(n, dim, coarse, seed)
    index = FaissIndex("test", dim, index_type=kind, **options)
    if kind == "ivf":
        index.train(vectors)
    elif kind == "hnsw":
        index.train()
    index.add(records, vectors)
    index.compact()
    rng = np.random.default_rng(seed + 100)
    queries = vectors[rng.integers(n, size=12)].copy()
    queries[::2] += 0.3 * rng.standard_normal((6, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return index, queries


CASES = [
    ("flat", {}),
    ("ivf", {"nlist": 48, "nprobe": 1, "exact_below": 50}),  # short answers: more lists, exact
    ("hnsw", {"exact_below": 50, "ef_search": 16}),
]


@pytest.mark.parametrize("kind, options", CASES)
@pytest.mark.parametrize("coarse", [False, True])
@pytest.mark.parametrize("k", [1, 10, 60, 400])
def test_arrays_answer_as_the_per_row_walk(kind, options, coarse, k):
    index, queries = _index(kind, coarse, **options)
    old = per_row(index)
    penalties = [0.0] + [PENALTY] * (len(queries) - 1)
    for search_filter in FILTERS:
        batch = index.search_batch(queries, k=k, filter=search_filter)
        assert batch == old.search_batch(queries, k=k, filter=search_filter)
        assert [index.search(q, k=k, filter=search_filter) for q in queries[:3]] == batch[:3]
        merged = index.search_merged(queries, k=k, filter=search_filter, penalties=penalties)
        assert merged == merge_hits(batch, penalties, k)
        for rows in (queries[:1], queries[:6]):
            assert (index.search_merged(rows, k=k, filter=search_filter)
                    == merge_hits(old.search_batch(rows, k=k, filter=search_filter),
                                  [0.0] * len(rows), k))


@pytest.mark.parametrize("kind, options", CASES)
def test_the_direct_faiss_call_answers_as_the_numpy_wrapper(kind, options):
    """``_faiss_search`` (FAISS's C++ method, arrays made here) gives exactly what
    ``structure.search`` gives, with and without a selector, for one row and several, and pads
    a short answer the same way."""
    index, queries = _index(kind, False, **options)
    index.search(queries[0])  # ids and payloads settled
    passing = index._ids[index._columns.mask(SearchFilter(max_moq=2))]
    selector, keep_alive = index._selector(passing)
    for params in (index._params(None, 64, index.nprobe), index._params(selector, 64, 1)):
        for rows in (queries[:1], queries):
            for k in (1, 64, 3000):  # 3000: more than the index holds, padded with -1
                scores, ids = _faiss_search(index._faiss, rows, k, params)
                want_scores, want_ids = index._faiss.search(rows, k, params=params)
                assert np.array_equal(ids, want_ids)
                assert np.array_equal(scores, want_scores)
    del keep_alive
    # a block FAISS could not read by its pointer goes through the wrapper instead
    strided = np.repeat(queries, 2, axis=0)[::2]
    assert not strided.flags.c_contiguous
    plain = index._params(None, 10, index.nprobe)
    assert np.array_equal(_faiss_search(index._faiss, strided, 10, plain)[1],
                          index._faiss.search(queries, 10, params=plain)[1])
    with pytest.raises(AssertionError):  # the wrapper's own check of the dimension
        _faiss_search(index._faiss, queries[:, :-1].copy(), 10, plain)


@pytest.mark.parametrize("coarse", [False, True])
def test_arrays_after_deletes_and_on_empty_answers(coarse):
    index, queries = _index("hnsw", coarse, exact_below=50)
    index.delete([f"L{i:05d}" for i in range(0, 500, 3)])  # tombstones in the graph
    assert index.tombstones > 0
    old = per_row(index)
    for k in (5, 40):
        assert index.search_batch(queries, k=k) == old.search_batch(queries, k=k)
    nobody = SearchFilter(supplier_ids=("nobody",))
    assert index.search_batch(queries, k=5, filter=nobody) == [[] for _ in queries]
    assert index.search_merged(queries, k=5, filter=nobody) == []
    assert index.search_merged(queries[:0], k=5) == []
    with pytest.raises(ValueError):
        index.search_merged(queries, k=5, penalties=[0.0])


@pytest.mark.parametrize("coarse", [False, True])
def test_group_scores_equal_the_per_row_means(coarse):
    index, queries = _index("flat", coarse)
    old = per_row(index)
    listings = sorted(index.listings())
    rng = np.random.default_rng(7)
    for query in queries:
        for size in (1, 10, 100):
            wanted = [listings[i] for i in rng.choice(len(listings), size, replace=False)]
            wanted += ["L00005", "nobody"]
            new = index.group_scores(query, wanted)
            assert new == old.group_scores(query, wanted)  # the same floats, bit for bit
            assert set(new) == set(wanted) - {"nobody"}
    assert index.group_scores(queries[0], ["nobody"]) == {}


def test_merge_keeps_the_earliest_row_of_equal_scores():
    """Two rows that each find one listing at the same score through different photos: the
    earlier row's photo is kept, as ``merge_hits`` keeps the first list's hit."""
    index, _ = _index("flat", True)
    rows = index._columns
    first, second = (int(row) for row in rows.rows_of(["L00030"])[:2])
    assert first > 10 and first % 10 and second % 10  # neither photo is copied
    vectors = index._faiss.reconstruct_batch(index._ids[[first, second]])
    for order in ([first, second], [second, first]):
        queries = index._faiss.reconstruct_batch(index._ids[order])
        merged = index.search_merged(queries, k=5, penalties=[0.0, 0.0])
        expected = merge_hits(per_row(index).search_batch(queries, k=5), [0.0, 0.0], 5)
        assert merged == expected
        hit = next(hit for hit in merged if hit.listing_id == "L00030")
        assert hit.image == rows.image(order[0])
    assert not np.array_equal(vectors[0], vectors[1])


@pytest.mark.parametrize("kind, options", CASES[:2])
@pytest.mark.parametrize("coarse", [False, True])
def test_search_images_equals_the_per_row_search(kind, options, coarse):
    index, queries = _index(kind, coarse, **options)
    old = per_row(index)
    for i in range(0, 12, 6):
        vector, views = queries[i], queries[i + 1:i + 6]
        for k in (10, 60):
            for search_filter in FILTERS[:3]:
                new = search_images(index, vector, k, search_filter, view_vectors=views)
                assert new == search_images(old, vector, k, search_filter, view_vectors=views)
                assert len(new) == k


def test_rows_of_and_marks_read_the_listing_codes():
    columns = PayloadColumns()
    columns.append((f"p{i}.jpg", {"listing_id": f"L{i % 7}", "product_id": None})
                   for i in range(40))
    codes = columns.codes("listing_id")
    wanted = {"L1", "L5", "nobody"}
    expected = np.flatnonzero(np.isin(codes, [columns.code_of("listing_id", lid)
                                              for lid in ("L1", "L5")]))
    assert columns.rows_of(wanted).tolist() == expected.tolist()
    assert columns.rows_of(["nobody"]).size == 0
    marks = columns.marks("product_id", ["anything"])
    assert not marks[columns.codes("product_id")].any()  # unknown (-1) reads false
