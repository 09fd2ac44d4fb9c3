"""FAISS backend: photo vectors searched in process, payloads held as numpy columns.

Index types (``index_type``):

- ``flat``: exact inner product (``IndexFlatIP`` under ``IndexIDMap2``);
- ``hnsw``: approximate, ``IndexHNSWFlat`` (inner product, ``M`` = 32) under ``IndexIDMap2``;
  ``ef_search`` (default 256) gives recall@10 >= 0.95 against exact search on the benchmarks
  in the tests and on clustered 100k x 128 data;
- ``ivf``: approximate, ``IndexIVFFlat`` with ``nlist`` ~ 4 * sqrt(n) lists, ``nprobe`` of them
  scanned per query (default 32; data without cluster structure needs about half the lists);
- ``auto`` (default): ``flat`` below ``hnsw_threshold`` vectors (50,000), ``hnsw`` from there,
  decided when the index is built or saved (:meth:`FaissIndex.compact`).

A large catalog is built by asking for ``hnsw`` or ``ivf``, calling :meth:`FaissIndex.train`
(IVF: on a sample of the catalog's vectors) and adding in batches: the vectors go straight into
the final structure, never held twice (``make bench-scale``: a million 217-float vectors as IVF
in 1.5 GiB at peak).

Every vector has a stable ``int64`` id (ids only grow, never reused). Filters are evaluated on
the payload columns into the ids that pass, handed to FAISS as an ``IDSelectorBitmap`` so the
search itself skips the others; when at most ``exact_below`` vectors pass, an approximate index
answers by an exact scan of those vectors instead. Photos are over-fetched and aggregated per
listing, doubling the fetch until ``k`` listings are found or every passing vector was seen.
Deleting removes vectors from flat and IVF structures; HNSW cannot remove, so deleted ids
become tombstones (never selected) until the graph is rebuilt by ``compact``/``save``.

On disk: ``vectors.faiss`` (the FAISS structure), ``payloads.npz`` and ``payloads.json`` (the
columns and ids), ``meta.json``. Reads are safe from several threads; writes are not.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.filters import SearchFilter
from retrieval.index import (
    IndexEntry,
    IndexMismatchError,
    IndexNotFoundError,
    IndexRecord,
    ListingHit,
    VectorIndex,
    as_record,
    best_per_listing,
    write_folder,
    write_meta,
)
from retrieval.payload_columns import PayloadColumns

try:  # the lone-query walk in C (setup.py builds it where a compiler is; optional)
    from retrieval import _walk as c_walk
except ImportError:  # pragma: no cover - depends on the install
    c_walk = None

INDEX_TYPES = ("auto", "flat", "hnsw", "ivf")
HNSW_THRESHOLD = 50_000  # vectors from which ``auto`` picks HNSW
HNSW_M = 32  # graph neighbours per node
EF_CONSTRUCTION = 80  # candidate list while building the graph
EF_SEARCH = 256  # candidate list per query (raised to the fetch size when that is larger)
NPROBE = 32  # IVF lists scanned per query
EXACT_BELOW = 10_000  # a filter passing at most this many vectors is answered exactly
MIN_FETCH = 64  # photos fetched by the first round of a search
PHOTOS_PER_LISTING = 4  # first-round over-fetch factor: photos per listing wanted
# vectors from which FAISS splits one unfiltered query's exact scan over its threads (a matrix
# product per thread), scoring it differently in the last bit from a batch (see search_batch)
FLAT_SPLIT_MIN = 10_000
VECTORS_FILE = "vectors.faiss"

WALK_MAX = 256  # photos in a lone query's answer up to which its listings are found by a walk
# one query's best listings, best first: their codes, best scores and best photos' rows
Head = tuple[Sequence[int], Sequence[float], Sequence[int]]
_EMPTY_HEAD: Head = ((), (), ())


class FaissIndex(VectorIndex):
    """In-process index; see the module docstring for index types, filters and deletion."""

    backend = "faiss"

    def __init__(self, embedder_name: str, dim: int,
                 records: Sequence[IndexRecord | IndexEntry] | None = None,
                 vectors: np.ndarray | None = None, info: dict[str, Any] | None = None, *,
                 index_type: str = "auto", hnsw_threshold: int = HNSW_THRESHOLD,
                 hnsw_m: int = HNSW_M, ef_construction: int = EF_CONSTRUCTION,
                 ef_search: int = EF_SEARCH, nlist: int | None = None, nprobe: int = NPROBE,
                 exact_below: int = EXACT_BELOW, embedder_version: str | None = None) -> None:
        super().__init__(embedder_name, dim, info, embedder_version)
        if index_type not in INDEX_TYPES:
            raise ValueError(f"unknown FAISS index type {index_type!r}; "
                             f"known: {', '.join(INDEX_TYPES)}")
        self.requested_type = index_type
        self.hnsw_threshold = int(hnsw_threshold)
        self.hnsw_m = int(hnsw_m)
        self.ef_construction = int(ef_construction)
        self.ef_search = int(ef_search)
        self.nlist = nlist
        self.nprobe = int(nprobe)
        self.exact_below = int(exact_below)
        self._type = "flat"
        self._faiss = self._new_structure("flat", None)
        self._ids = np.empty(0, np.int64)
        self._pending_ids: list[np.ndarray] = []
        self._next_id = 0
        self._columns = PayloadColumns()
        self._photo_counts: Counter[str] = Counter()
        self._tombstones = 0
        self._plain_params: dict[tuple[str, int, int], Any] = {}
        if records:
            self.add(records, vectors)

    @property
    def index_type(self) -> str:
        return self._type

    def __len__(self) -> int:
        return len(self._columns)

    @property
    def tombstones(self) -> int:
        """Deleted vectors still inside an HNSW graph (dropped by ``compact``)."""
        return self._tombstones

    # -- writing -------------------------------------------------------------------------------

    def add(self, records: Sequence[IndexRecord | IndexEntry], vectors: np.ndarray) -> None:
        records = [as_record(record) for record in records]
        rows = self._check_vectors(records, vectors)
        if not records:
            return
        replaced = {(r.listing_id, r.image) for r in records if self._photo_counts[r.listing_id]}
        if replaced:
            self._remove_pairs(replaced)
        ids = np.arange(self._next_id, self._next_id + len(records), dtype=np.int64)
        self._next_id += len(records)
        self._faiss.add_with_ids(rows, ids)
        self._pending_ids.append(ids)
        self._columns.append((record.image, record.full_payload()) for record in records)
        self._photo_counts.update(record.listing_id for record in records)

    def delete(self, listing_ids: Iterable[str]) -> int:
        listing_ids = set(listing_ids)
        rows = self._columns.rows_of(listing_ids)
        self._remove_rows(rows)
        for listing_id in listing_ids:
            self._photo_counts.pop(listing_id, None)
            self.fingerprints.pop(listing_id, None)
        return int(rows.size)

    def update_payloads(self, payloads: Mapping[str, Mapping[str, Any]]) -> int:
        touched = 0
        for listing_id, payload in payloads.items():
            rows = self._columns.rows_of([listing_id])
            fields = {k: v for k, v in payload.items() if k not in ("image", "listing_id")}
            self._columns.set_rows(rows, fields)
            touched += int(rows.size)
        return touched

    def train(self, sample: np.ndarray | None = None) -> None:
        """Set up the requested ``hnsw`` or ``ivf`` structure on an empty index, so that a large
        catalog is added straight into it in batches (no flat index first, no rebuild copy of
        every vector when it is compacted). IVF learns its lists from ``sample``, a few dozen
        vectors per list drawn from the catalog (``(n, dim)`` float32, unit rows)."""
        if len(self):
            raise ValueError("train() sets up an empty index; this one holds vectors already")
        if self.requested_type not in ("hnsw", "ivf"):
            raise ValueError(f"train() needs index_type 'hnsw' or 'ivf', not "
                             f"{self.requested_type!r}")
        training = None
        if self.requested_type == "ivf":
            if sample is None or len(sample) == 0:
                raise ValueError("an IVF index needs a training sample of catalog vectors")
            training = self._check_vectors(range(len(sample)), sample)
        self._faiss = self._new_structure(self.requested_type, training)
        self._type = self.requested_type

    def compact(self) -> None:
        """Drop HNSW tombstones and switch to the index type wanted for the current size."""
        self._flush_ids()
        target = self._target_type()
        if target != self._type or self._tombstones:
            self._rebuild(target)

    # -- reading -------------------------------------------------------------------------------

    def listings(self) -> set[str]:
        return {listing_id for listing_id, count in self._photo_counts.items() if count}

    def payload(self, listing_id: str) -> dict[str, Any] | None:
        rows = self._columns.rows_of([listing_id])
        return self._columns.payload(int(rows[0])) if rows.size else None

    def search(self, vector: np.ndarray, k: int = 10,
               filter: SearchFilter | None = None) -> list[ListingHit]:
        query = self._query(vector)
        if (filter is None or filter.is_empty) and not self._tombstones and k > 0 \
                and len(self._columns):
            return self._lone_hits(query, k)
        return self._hits(self._search_rows(query, k, filter)[0])

    def search_batch(self, vectors: np.ndarray, k: int = 10,
                     filter: SearchFilter | None = None) -> list[list[ListingHit]]:
        """Every row's answer is exactly the one ``search`` gives, for less: the filter is
        evaluated once, and IVF and HNSW structures answer the first round of every row in one
        FAISS call (the rare row that needs more photos continues alone, as ``search`` would).

        A large flat structure searched without a filter is still asked one row at a time:
        there FAISS scores a single query by a matrix product split over its threads (from
        ``FLAT_SPLIT_MIN`` vectors on) and several queries by a scan each, and the two sums
        differ in the last bit, which is enough to reorder near ties. Below that size, with a
        filter, and for IVF and HNSW, each query is scored by the same scan whatever the batch
        (the coarse quantizer is asked in groups small enough to stay on that path); the tests
        pin both sides of the rule."""
        return [self._hits(head) for head in self._search_rows(self._check_rows(vectors), k,
                                                                filter)]

    def search_merged(self, vectors: np.ndarray, k: int = 10,
                      filter: SearchFilter | None = None,
                      penalties: Sequence[float] | None = None) -> list[ListingHit]:
        """``retrieval.search.merge_hits(self.search_batch(vectors, k, filter), penalties, k)``
        computed on arrays: per listing the best of its rows' scores, each row's lowered by its
        penalty (the earliest row on equal scores), the ``k`` best, best first (ties by
        listing id). Only the answer's ``k`` hits are made into objects."""
        queries = self._check_rows(vectors)
        penalties = [0.0] * len(queries) if penalties is None else list(penalties)
        if len(penalties) != len(queries):
            raise ValueError(f"{len(penalties)} penalties for {len(queries)} query rows")
        heads = self._search_rows(queries, k, filter)
        sizes = [len(head[0]) for head in heads]
        total = sum(sizes)
        if total == 0:
            return []
        codes = np.fromiter(chain.from_iterable(head[0] for head in heads), np.int64, total)
        scores = np.fromiter(chain.from_iterable(head[1] for head in heads), np.float64, total)
        scores -= np.repeat(np.asarray(penalties, np.float64), sizes)
        photos = np.fromiter(chain.from_iterable(head[2] for head in heads), np.int64, total)
        query_rows = np.repeat(np.arange(len(heads)), sizes)
        # each listing's best: sorted by listing, best score first, earliest row on equal scores
        order = np.lexsort((query_rows, -scores, codes))
        codes, scores, photos = codes[order], scores[order], photos[order]
        first = np.ones(total, bool)
        first[1:] = codes[1:] != codes[:-1]
        return self._ranked(codes[first], scores[first], photos[first], k)

    def _check_rows(self, vectors: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise IndexMismatchError(f"queries have shape {rows.shape}, index has dimension "
                                     f"{self.dim}")
        return rows

    def _search_rows(self, queries: np.ndarray, k: int,
                     filter: SearchFilter | None) -> list[Head]:
        """The answers for ``queries`` (``(n, dim)`` contiguous float32), one head per row (see
        :meth:`_heads`)."""
        size = len(self._columns)
        if k <= 0 or size == 0:
            return [_EMPTY_HEAD for _ in range(len(queries))]
        self._settle_forced_type()
        passing: np.ndarray | None = None  # rows that pass the filter; None = all rows
        if filter is not None and not filter.is_empty:
            passing = np.flatnonzero(self._columns.mask(filter))
            if passing.size == 0:
                return [_EMPTY_HEAD for _ in range(len(queries))]
        n_pass = size if passing is None else int(passing.size)
        if passing is not None and self._type != "flat" and n_pass <= self.exact_below:
            return [self._exact(queries[i:i + 1], passing, k) for i in range(len(queries))]
        selector = keep_alive = None
        if passing is not None or self._tombstones:
            selector, keep_alive = self._selector(self._ids if passing is None
                                                  else self._ids[passing])
        fetch = _first_fetch(n_pass, k)
        params = self._params(selector, fetch, self.nprobe)
        answers: list[Head] = []
        one_by_one = (len(queries) == 1 or self._type == "flat" and selector is None
                      and self._faiss.ntotal >= FLAT_SPLIT_MIN)
        group = 1 if one_by_one else _batch_rows(self.dim)
        for start in range(0, len(queries), group):
            chunk = queries[start:start + group]
            if len(chunk) > 1:
                with _one_faiss_thread():
                    scores, ids = _faiss_search(self._faiss, chunk, fetch, params)
            else:
                scores, ids = _faiss_search(self._faiss, chunk, fetch, params)
            heads, found = self._heads(scores, ids, k)
            for i, head in enumerate(heads):
                if len(head[0]) < k and found[i] < n_pass:  # the rare row that needs more
                    head = self._settle(chunk[i:i + 1], head, found[i], k, fetch, n_pass,
                                        passing, selector)
                answers.append(head)
        del keep_alive  # the selector's bitmap, alive until the search is done
        return answers

    def _lone_hits(self, query: np.ndarray, k: int) -> list[ListingHit]:
        """What ``_search_rows`` answers for one unfiltered query on an index without
        tombstones (``k`` > 0, not empty), as hits, without its filter, selector and batch
        handling: the path of most searches, where the project's few microseconds around FAISS's
        call count. A complete answer over dense ids is walked in C where ``retrieval._walk``
        was compiled (it returns ``None`` for the cases the Python walk keeps), else here."""
        size = len(self._columns)
        self._settle_forced_type()
        fetch = _first_fetch(size, k)
        scores, ids = _faiss_search(self._faiss, query, fetch,
                                    self._params(None, fetch, self.nprobe))
        live = self._ids
        if ids[0, -1] >= 0 and live[-1] == live.size - 1:  # complete, and its ids are rows
            if c_walk is not None:
                hits = c_walk.lone_hits(scores, ids, *self._columns.hit_columns(), k, ListingHit)
                if hits is not None:
                    return hits
            head, found = self._walk(scores[0], ids[0], k), fetch
        else:
            (head,), (found,) = self._heads(scores, ids, k)
        if len(head[0]) < k and found < size:  # the rare answer that needs more photos
            head = self._settle(query, head, found, k, fetch, size, None, None)
        return self._hits(head)

    def _settle(self, query: np.ndarray, head: Head, found: int, k: int, fetch: int,
                n_pass: int, passing: np.ndarray | None, selector: Any) -> Head:
        """One query's listings from its first answer (``head``, from ``found`` photos of the
        ``fetch`` asked): while fewer than ``k`` listings are found and more photos pass, fetch
        twice as many (IVF first scans more lists when its structure ran dry; an exact scan
        ends it when nothing else can)."""
        nprobe = self.nprobe
        while len(head[0]) < k and found < n_pass:
            ran_dry = found < fetch  # the approximate structure gave fewer than asked
            if ran_dry and self._type == "ivf" and nprobe < self._faiss.nlist:
                nprobe = min(self._faiss.nlist, nprobe * 2)
            elif ran_dry and fetch >= n_pass:
                return self._exact(query, passing, k)
            elif fetch >= n_pass:
                return head
            else:
                fetch = min(n_pass, fetch * 2)
            scores, ids = _faiss_search(self._faiss, query, fetch,
                                        self._params(selector, fetch, nprobe))
            (head,), (found,) = self._heads(scores, ids, k)
        return head

    def _rows_of_ids(self, ids: np.ndarray) -> np.ndarray:
        """Row numbers of vector ids. Ids ascend with the rows, so while nothing was deleted
        (ids ``0 .. n-1``) an id is its row and the lookup is skipped."""
        live = self._ids
        if live.size and int(live[-1]) == live.size - 1:
            return ids
        return np.searchsorted(live, ids)

    def listing_scores(self, vector: np.ndarray,
                       listing_ids: Iterable[str]) -> dict[str, ListingHit]:
        query = self._query(vector)
        self._flush_ids()
        rows = self._columns.rows_of(set(listing_ids))
        if rows.size == 0:
            return {}
        scores = self._faiss.reconstruct_batch(self._ids[rows]) @ query[0]
        columns = self._columns
        return best_per_listing(columns.listing_ids_at(columns.codes("listing_id")[rows]),
                                columns.images_at(rows), scores)

    def group_scores(self, vector: np.ndarray, listing_ids: Iterable[str]) -> dict[str, float]:
        """See ``VectorIndex.group_scores``; ``group_means`` computed on arrays: the same rows
        scored, each group's scores summed in row order."""
        query = self._query(vector)
        self._flush_ids()
        columns = self._columns
        listings = columns.codes("listing_id")
        wanted = columns.marks("listing_id", listing_ids)[listings]
        if not wanted.any():
            return {}
        products = columns.codes("product_id")
        shared = np.unique(products[wanted])
        shared = shared[shared >= 0]
        chosen = wanted
        if shared.size:
            mark = np.zeros(len(columns.vocab["product_id"]) + 1, bool)  # code -1 reads the end
            mark[shared] = True
            chosen = wanted | mark[products]
        rows = np.flatnonzero(chosen)
        scores = self._faiss.reconstruct_batch(self._ids[rows]) @ query[0]
        listings, products = listings[rows], products[rows]
        # a group is the product, or the listing alone without one (an empty id is none)
        grouped = products >= 0
        blank = columns.code_of("product_id", "")
        if blank is not None:
            grouped &= products != blank
        groups = np.where(grouped, products.astype(np.int64),
                          len(columns.vocab["product_id"]) + listings.astype(np.int64))
        _, group_of = np.unique(groups, return_inverse=True)
        means = np.bincount(group_of, weights=scores) / np.bincount(group_of)
        # each wanted listing in the group of its first row
        present, first = np.unique(listings, return_index=True)
        asked = wanted[rows[first]]
        names = columns.vocab["listing_id"]
        return {names[code]: mean for code, mean in
                zip(present[asked].tolist(), means[group_of[first[asked]]].tolist())}

    # -- persistence ---------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        import faiss

        self.compact()

        def write(staging: Path) -> None:
            faiss.write_index(self._faiss, str(staging / VECTORS_FILE))
            self._columns.write(staging, self._ids)
            write_meta(staging, self._meta(faiss=self._settings()))

        return write_folder(folder, write)

    @classmethod
    def _open(cls, folder: Path, meta: dict[str, Any], **options: Any) -> FaissIndex:
        import faiss

        vectors_path = folder / VECTORS_FILE
        if not vectors_path.exists():
            raise IndexNotFoundError(f"no index at {folder}: {VECTORS_FILE} is missing; "
                                     "build one with `sourcing index build`")
        settings = dict(meta.get("faiss") or {})
        next_id = int(settings.pop("next_id", 0))
        index = cls(meta["embedder"], int(meta["dim"]), **{**settings, **options})
        structure = faiss.read_index(str(vectors_path))
        columns, ids = PayloadColumns.read(folder)
        if structure.ntotal != len(ids) or len(columns) != len(ids) or structure.d != index.dim:
            raise IndexMismatchError(
                f"index at {folder} is inconsistent: {structure.ntotal} vectors of dimension "
                f"{structure.d}, {len(ids)} ids, {len(columns)} payloads; rebuild it")
        index._type = meta["index_type"]
        index._faiss = structure
        index._ids, index._columns = ids, columns
        index._next_id = max(next_id, int(ids[-1]) + 1 if ids.size else 0)
        names = columns.vocab["listing_id"]
        counts = np.bincount(columns.codes("listing_id"), minlength=len(names))
        index._photo_counts = Counter({names[c]: int(n) for c, n in enumerate(counts) if n})
        if index._type == "ivf":
            structure.nprobe = index.nprobe
        return index

    # -- internals -----------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {"index_type": self.requested_type, "hnsw_threshold": self.hnsw_threshold,
                "hnsw_m": self.hnsw_m, "ef_construction": self.ef_construction,
                "ef_search": self.ef_search, "nlist": self.nlist, "nprobe": self.nprobe,
                "exact_below": self.exact_below, "next_id": self._next_id}

    def _target_type(self) -> str:
        if self.requested_type != "auto":
            return self.requested_type
        return "hnsw" if len(self) >= self.hnsw_threshold else "flat"

    def _settle_forced_type(self) -> None:
        self._flush_ids()
        if self.requested_type not in ("auto", self._type):
            self._rebuild(self.requested_type)

    def _flush_ids(self) -> None:
        if self._pending_ids:
            self._ids = np.concatenate([self._ids, *self._pending_ids])
            self._pending_ids = []

    def _new_structure(self, kind: str, training: np.ndarray | None) -> Any:
        import faiss

        if kind == "hnsw":
            graph = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = self.ef_construction
            graph.hnsw.efSearch = self.ef_search
            return faiss.IndexIDMap2(graph)
        if kind == "ivf":
            # IVF stores ids itself; under IndexIDMap2 its removals would shift the id map
            n = 0 if training is None else len(training)
            nlist = max(1, min(self.nlist or round(4 * math.sqrt(n)), n))
            quantizer = faiss.IndexFlatIP(self.dim)
            lists = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            lists.cp.min_points_per_centroid = 1  # small indexes train on what there is
            lists.train(training)
            lists.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by id
            lists.nprobe = self.nprobe
            return lists
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _rebuild(self, kind: str) -> None:
        if kind == "ivf" and len(self) == 0:
            return  # IVF needs vectors to train on; stay flat until there are some
        vectors = (self._faiss.reconstruct_batch(self._ids) if self._ids.size
                   else np.zeros((0, self.dim), np.float32))
        structure = self._new_structure(kind, vectors)
        if self._ids.size:
            structure.add_with_ids(vectors, self._ids)
        self._faiss, self._type, self._tombstones = structure, kind, 0

    def _remove_pairs(self, pairs: set[tuple[str, str]]) -> None:
        """Remove the vectors of these (listing, image) pairs."""
        names = self._columns.vocab["listing_id"]
        codes = self._columns.codes("listing_id")
        rows = [row for row in self._columns.rows_of({lid for lid, _ in pairs}).tolist()
                if (names[codes[row]], self._columns.image(row)) in pairs]
        self._photo_counts.subtract(names[codes[row]] for row in rows)
        self._remove_rows(np.array(rows, np.int64))

    def _remove_rows(self, rows: np.ndarray) -> None:
        import faiss

        self._flush_ids()
        if rows.size == 0:
            return
        ids = np.ascontiguousarray(self._ids[rows], dtype=np.int64)
        if self._type == "hnsw":
            self._tombstones += int(ids.size)  # HNSW cannot remove: never select them again
        elif self._type == "ivf":
            self._faiss.remove_ids(faiss.IDSelectorArray(ids.size, faiss.swig_ptr(ids)))
        else:
            self._faiss.remove_ids(faiss.IDSelectorBatch(ids.size, faiss.swig_ptr(ids)))
        keep = np.ones(len(self._ids), bool)
        keep[rows] = False
        self._ids = self._ids[keep]
        self._columns.keep(keep)

    def _selector(self, ids: np.ndarray) -> tuple[Any, np.ndarray]:
        """An ``IDSelectorBitmap`` over ``ids`` and the bitmap it reads (keep it alive)."""
        import faiss

        bits = np.zeros(self._next_id, bool)
        bits[ids] = True
        bitmap = np.packbits(bits, bitorder="little")
        return faiss.IDSelectorBitmap(self._next_id, faiss.swig_ptr(bitmap)), bitmap

    def _params(self, selector: Any, fetch: int, nprobe: int) -> Any:
        """FAISS search parameters; those without a selector are made once and reused (FAISS
        only reads them, so threads may share them)."""
        if selector is None:
            key = (self._type, fetch, nprobe)
            try:
                return self._plain_params[key]
            except KeyError:
                if len(self._plain_params) > 64:
                    self._plain_params.clear()
                params = self._plain_params[key] = self._new_params(None, fetch, nprobe)
                return params
        return self._new_params(selector, fetch, nprobe)

    def _new_params(self, selector: Any, fetch: int, nprobe: int) -> Any:
        import faiss

        extra = {} if selector is None else {"sel": selector}
        if self._type == "hnsw":
            return faiss.SearchParametersHNSW(efSearch=max(self.ef_search, fetch), **extra)
        if self._type == "ivf":
            return faiss.SearchParametersIVF(nprobe=nprobe, **extra)
        return faiss.SearchParameters(**extra) if extra else None

    def _exact(self, query: np.ndarray, rows: np.ndarray | None, k: int) -> Head:
        """Exact scores of ``rows`` (all live rows when ``None``), aggregated per listing."""
        if rows is None:
            rows = np.arange(len(self._ids))
        scores = self._faiss.reconstruct_batch(self._ids[rows]) @ query[0]
        order = np.argsort(-scores, kind="stable")
        (head,), _ = self._heads_of_rows(scores[order][None], rows[order][None], k, True)
        return head

    def _heads(self, scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[list[Head], list[int]]:
        """Per row of a FAISS answer (``scores`` and vector ``ids``, ``(n, fetch)``, best first,
        ``-1`` where fewer photos were found), its head and the number of photos it holds."""
        rows = self._rows_of_ids(ids)
        last = ids[:, -1]  # FAISS pads the end of a short answer with -1
        complete = ids.size == 0 or (last[0] >= 0 if last.size == 1 else last.min() >= 0)
        if not complete:
            rows = np.where(ids >= 0, rows, -1)
        return self._heads_of_rows(scores, rows, k, bool(complete))

    def _heads_of_rows(self, scores: np.ndarray, rows: np.ndarray, k: int,
                       complete: bool | None = None) -> tuple[list[Head], list[int]]:
        """The ``k`` best listings of each row of photo ``rows`` (``(n, m)``, best first, ``-1``
        for none, at the end) with their ``scores``: each row's *head* (its listings' codes,
        best scores and best photos' rows, best first, ties by listing id: what ``ranked``
        gives) and the number of photos each row holds. ``complete``: no row holds a -1.

        A lone short row is walked (:meth:`_walk`). Several rows are done at once on arrays:
        the first photo of each listing in each row (its best), then per row the listings down
        to the k-th one's score; a listing tied with the k-th is kept (ties go by listing id),
        so only a row with equal scores among those it keeps is sorted, by score and listing
        id, and cut to ``k``."""
        n, m = rows.shape
        if n == 0 or m == 0:
            return [_EMPTY_HEAD] * n, [0] * n
        if complete is None:
            complete = bool(rows[:, -1].min() >= 0)
        if n == 1 and m <= WALK_MAX:
            if not complete:
                found = rows[0] >= 0
                return [self._walk(scores[0][found], rows[0][found], k)], [int(found.sum())]
            return [self._walk(scores[0], rows[0], k)], [m]
        codes = self._columns.codes("listing_id")[rows]
        # one key per (row, listing): the first photo of each key is the listing's best
        width = len(self._columns.vocab["listing_id"])
        keys = codes + (np.arange(n, dtype=np.int64) * width)[:, None]
        if not complete:
            keys[rows < 0] = -1
        keys = keys.ravel()
        order = keys.argsort(kind="stable")
        ordered = keys[order]
        first = np.empty(keys.size, bool)
        first[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        if not complete:
            first &= ordered >= 0
        first = np.sort(order[first])  # each listing's best photo, row by row, best first
        row_of = first // m
        values = scores.ravel()[first]
        counts = np.bincount(row_of, minlength=n)
        full = counts >= k
        if full.any():  # keep down to the k-th listing's score (ties with it included)
            ends = counts.cumsum()
            kth = values[np.minimum(ends - counts + (k - 1), values.size - 1)]
            kth[~full] = -np.inf
            keep = values >= kth[row_of]
            first, row_of, values = first[keep], row_of[keep], values[keep]
            counts = np.bincount(row_of, minlength=n)
        codes = codes.ravel()[first].tolist()
        photos = rows.ravel()[first].tolist()
        bounds = [0, *counts.cumsum().tolist()]
        same = values[1:] == values[:-1]
        tied = set(row_of[1:][same & (row_of[1:] == row_of[:-1])].tolist()) if same.any() else ()
        values = values.tolist()
        heads: list[Head] = []
        for row, (start, end) in enumerate(zip(bounds, bounds[1:])):
            head = (codes[start:end], values[start:end], photos[start:end])
            if row in tied:  # equal scores among the kept: by score, then listing id
                head = self._ranked_head(head, k)
            heads.append(head)
        found = [m] * n if complete else (rows >= 0).sum(axis=1).tolist()
        return heads, found

    def _walk(self, scores: np.ndarray, rows: np.ndarray, k: int) -> Head:
        """One row's head (see :meth:`_heads_of_rows`) by walking its photos best first until
        ``k`` listings are found and the next photo scores below the k-th: a few list
        operations over the head of the answer, cheaper than the arrays for one short row.
        Most answers settle within their first ``2k`` photos, so only their listing codes are
        read first (each read a likely cache miss right after FAISS's scan); the rest only when
        the walk needs them."""
        column = self._columns.codes("listing_id")
        end = min(len(rows), 2 * k)
        codes, values = column[rows[:end]].tolist(), scores[:end].tolist()
        positions, settled = _walk_positions(codes, values, k)
        if not settled and end < len(rows):
            codes, values = column[rows].tolist(), scores.tolist()
            positions, _ = _walk_positions(codes, values, k)
        found = [codes[position] for position in positions]
        best = [values[position] for position in positions]
        head = (found, best, rows[positions].tolist())
        if len(set(best)) < len(best):  # equal scores: by score, then listing id
            return self._ranked_head(head, k)
        return head[0][:k], head[1][:k], head[2][:k]

    def _ranked_head(self, head: Head, k: int) -> Head:
        codes, values, photos = head
        names = self._columns.vocab["listing_id"]
        order = sorted(range(len(codes)), key=lambda i: (-values[i], names[codes[i]]))[:k]
        return [codes[i] for i in order], [values[i] for i in order], [photos[i] for i in order]

    def _hits(self, head: Head) -> list[ListingHit]:
        """A head as listing hits."""
        codes, values, photos = head
        columns = self._columns
        # tuple.__new__ makes the named tuple without the Python-level constructor's call, in
        # half the time (the fields are given in their order)
        make = tuple.__new__
        return [make(ListingHit, hit) for hit in
                zip(columns.listing_ids_at(codes), values, columns.images_at(photos))]

    def _ranked(self, codes: np.ndarray, scores: np.ndarray, photos: np.ndarray,
                k: int) -> list[ListingHit]:
        """``ranked`` of one hit per listing given as arrays (``scores`` float64): the ``k``
        best by score, then listing id; only the listings that can make the cut are sorted."""
        if codes.size > k:
            kth = np.partition(scores, codes.size - k)[codes.size - k]
            keep = scores >= kth
            codes, scores, photos = codes[keep], scores[keep], photos[keep]
        return self._hits(self._ranked_head((codes.tolist(), scores.tolist(), photos.tolist()), k))


def _faiss_search(structure: Any, queries: np.ndarray, k: int,
                  params: Any) -> tuple[np.ndarray, np.ndarray]:
    """``structure.search(queries, k, params=params)`` through FAISS's C++ method (``search_c``)
    with the answer's arrays made here: the queries are already a contiguous ``(n, dim)``
    float32 block of the index's dimension (``_query``, ``_check_rows``), so the numpy wrapper's
    conversions and checks are skipped (a few µs a query right after FAISS's scan has left the
    CPU caches cold). Answers are the same, bit for bit. Any other array goes through the
    wrapper, which converts or refuses it: FAISS reads the block by its pointer alone."""
    if (queries.dtype != np.float32 or not queries.flags.c_contiguous or queries.ndim != 2
            or queries.shape[1] != structure.d):
        return structure.search(queries, k, params=params)
    ptr = _swig_ptr or _bind_swig_ptr()
    n = len(queries)
    scores = np.empty((n, k), np.float32)
    ids = np.empty((n, k), np.int64)
    structure.search_c(n, ptr(queries), k, ptr(scores), ptr(ids), params)
    return scores, ids


# faiss.swig_ptr, bound at the first search (FAISS is imported lazily); an import statement in
# ``_faiss_search`` itself measured about 1 % slower right after a scan
_swig_ptr: Any = None


def _bind_swig_ptr() -> Any:
    global _swig_ptr
    from faiss import swig_ptr

    _swig_ptr = swig_ptr
    return swig_ptr


def _first_fetch(n_pass: int, k: int) -> int:
    """Photos asked of FAISS in a query's first round: enough for ``k`` listings of a few photos
    each (``PHOTOS_PER_LISTING``, at least ``MIN_FETCH``), at most the ``n_pass`` that pass."""
    return min(n_pass, max(MIN_FETCH, k * PHOTOS_PER_LISTING))


def _walk_positions(codes: Sequence[int], values: Sequence[float],
                    k: int) -> tuple[list[int], bool]:
    """Positions of each listing's first (best) photo in an answer's ``codes`` (``values``
    best first), down to the ``k``-th listing and those tied with it, and whether the walk was
    settled inside them (a photo scoring below the k-th listing was reached)."""
    seen: set[int] = set()
    positions: list[int] = []
    walk = enumerate(codes)
    for position, code in walk:
        if code not in seen:
            seen.add(code)
            positions.append(position)
            if len(positions) == k:
                break
    else:
        return positions, False  # fewer than k listings here
    kth = values[positions[-1]]
    for position, code in walk:  # the listings tied with the k-th
        if values[position] < kth:
            return positions, True
        if code not in seen:
            seen.add(code)
            positions.append(position)
    return positions, False


@contextmanager
def _one_faiss_thread() -> Iterator[None]:
    """FAISS's OpenMP team of the calling thread cut to one thread for the duration.

    FAISS splits a batch of queries over its threads. For the handful of rows of one photo
    search that saves little when the machine is idle (a few hundred microseconds on the demo
    index) and stalls badly when it is not: with another process holding the second of two
    cores, six rows took 20 ms instead of 0.3 ms, the thread team waiting for a time slice.
    Each query is scored by the same scan either way, so the answers do not change. The
    setting is per calling thread in OpenMP, hence set and restored around the call."""
    import faiss

    previous = faiss.omp_get_max_threads()
    if previous == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _batch_rows(dim: int) -> int:
    """Query rows per FAISS call in ``search_batch``: while rows x dim stays below
    ``distance_compute_blas_threshold`` FAISS scores each query on its own, as for a single
    query (past it, exact search switches to a matrix product whose sums may differ in the last
    bit, and with them the order of near ties)."""
    import faiss

    return max(1, (int(faiss.cvar.distance_compute_blas_threshold) - 1) // dim)


class ImageIndex(FaissIndex):
    """The FAISS index under its historical name. ``ImageIndex.load`` opens any backend."""

    @classmethod
    def load(cls, folder: str | Path, expected_embedder: str | None = None,
             expected_dim: int | None = None, **options: Any) -> VectorIndex:
        return VectorIndex.load(folder, expected_embedder, expected_dim, **options)
