"""``make bench-scale``: the FAISS index at a million listings, on one machine.

Synthetic data, said plainly: 1,000,000 listings, one photo vector each, unit vectors of the real
embedder's dimension (read from the default embedder when the run starts, ``DescriptorEmbedder``
with its shipped projection; printed on the first line), drawn from a hierarchy that mimics a
catalog: 40 categories, 25,000 products around the categories (cosine 0.74 to their category),
listings around their product (cosine 0.82 to it, 0.67 between two listings of one product, about
0.37 between listings of different products of one category, 0 across categories). Metadata per
listing (category, product, one of 20,000 suppliers with kind, country, certifications and
capabilities, MOQ and lowest unit price, log-normal) has the shape of the demo catalog's.
Queries are new listings of random products, each searched unfiltered and with a filter (three
kinds in turn: factory with MOQ <= 300; certification CE; the query's category).

The index is IVF (``IndexIVFFlat``, ``nlist`` lists trained on a sample, then filled batch by
batch: the vectors are never held twice), saved, freed, loaded and searched. HNSW, the default
above 50,000 vectors, is not used here: building a graph over a million vectors takes far longer
on two cores than filling IVF lists (each insertion reads thousands of vectors at random). Recall@10 is
against exact search over every vector (regenerated chunk by chunk from the same seeds), with
the same filter. Peak memory is the process's maximum resident set.

Exits 0 when the targets hold (filtered and unfiltered p95 <= 50 ms, recall@10 >= 0.95, peak
memory < 12 GiB), 1 otherwise with the failed targets named.
"""

from __future__ import annotations

import argparse
import gc
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from retrieval.faiss_index import FaissIndex
from retrieval.filters import SearchFilter
from retrieval.index import IndexRecord, open_index

SEED = 7
CATEGORIES = [f"{sector} / {kind}" for sector in ("apparel", "bags", "watches", "fitness",
                                                  "appliances")
              for kind in ("a", "b", "c", "d", "e", "f", "g", "h")]  # 40 categories
CERTIFICATIONS = ("CE", "ROHS", "ISO9001", "BSCI", "FCC", "UL", "GS", "OEKO-TEX")
CERT_SHARE = (0.45, 0.35, 0.4, 0.2, 0.15, 0.08, 0.08, 0.15)
CAPABILITIES = ("oem", "odm", "custom_logo", "small_batch")
CAPABILITY_SHARE = (0.6, 0.4, 0.5, 0.3)
COUNTRIES = ("CN", "VN", "IN", "TR")
COUNTRY_SHARE = (0.85, 0.07, 0.05, 0.03)
GIB = 1024 ** 3
TARGET_P95_MS = 50.0
TARGET_RECALL = 0.95
TARGET_PEAK_GIB = 12.0


def peak_gib() -> float:
    """Maximum resident set of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def rss_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / GIB
    return float("nan")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message} (rss {rss_gib():.2f} GiB, "
          f"peak {peak_gib():.2f} GiB)", flush=True)


class SyntheticCatalog:
    """Vectors and metadata of ``n`` synthetic listings, reproducible chunk by chunk."""

    def __init__(self, n: int, dim: int, products: int = 25_000, suppliers: int = 20_000,
                 seed: int = SEED) -> None:
        self.n, self.dim, self.seed = n, dim, seed
        rng = np.random.default_rng(seed)
        centres = _unit(rng.standard_normal((len(CATEGORIES), dim), dtype=np.float32))
        self.product_category = rng.integers(len(CATEGORIES), size=products)
        noise = _unit(rng.standard_normal((products, dim), dtype=np.float32))
        self.products = _unit(centres[self.product_category] + 0.9 * noise)
        del noise
        self.product_of = rng.integers(products, size=n)
        self.supplier_of = rng.integers(suppliers, size=n)
        self.kind = np.where(rng.random(suppliers) < 0.6, "factory", "trading_company")
        self.country = rng.choice(COUNTRIES, size=suppliers, p=COUNTRY_SHARE)
        self.certs = rng.random((suppliers, len(CERTIFICATIONS))) < np.array(CERT_SHARE)
        self.caps = rng.random((suppliers, len(CAPABILITIES))) < np.array(CAPABILITY_SHARE)
        factory = self.kind[self.supplier_of] == "factory"
        self.moq = np.where(factory, rng.lognormal(np.log(300), 0.6, n),
                            rng.lognormal(np.log(10), 0.8, n)).round().clip(1).astype(np.int64)
        self.price = rng.lognormal(np.log(6.0), 0.9, n).round(2)

    def vectors(self, start: int, stop: int) -> np.ndarray:
        """Unit vectors of listings ``start`` to ``stop`` (the same on every call)."""
        rng = np.random.default_rng((self.seed, start))
        noise = rng.standard_normal((stop - start, self.dim), dtype=np.float32)
        noise *= 0.7 / np.sqrt(self.dim)
        noise += self.products[self.product_of[start:stop]]
        return _unit(noise)

    def records(self, start: int, stop: int) -> list[IndexRecord]:
        out = []
        for i in range(start, stop):
            s = int(self.supplier_of[i])
            out.append(IndexRecord(f"L{i:07d}", f"images/L{i:07d}-1.jpg", {
                "supplier_id": f"S{s:05d}", "product_id": f"P{int(self.product_of[i]):05d}",
                "category": CATEGORIES[int(self.product_category[self.product_of[i]])],
                "supplier_kind": str(self.kind[s]), "moq": int(self.moq[i]),
                "price_min": float(self.price[i]),
                "certifications": [c for c, held in zip(CERTIFICATIONS, self.certs[s]) if held],
                "capabilities": [c for c, held in zip(CAPABILITIES, self.caps[s]) if held],
                "country": str(self.country[s])}))
        return out

    def mask(self, search_filter: SearchFilter) -> np.ndarray:
        """Listings passing the filter, computed from the generator's arrays (independently of
        the index's payload columns)."""
        keep = np.ones(self.n, bool)
        f = search_filter
        if f.supplier_kind:
            keep &= self.kind[self.supplier_of] == f.supplier_kind
        if f.max_moq is not None:
            keep &= self.moq <= f.max_moq
        for cert in f.certifications:
            keep &= self.certs[self.supplier_of, CERTIFICATIONS.index(cert)]
        if f.categories:
            wanted = [CATEGORIES.index(c) for c in f.categories]
            keep &= np.isin(self.product_category[self.product_of], wanted)
        return keep

    def queries(self, count: int) -> tuple[np.ndarray, list[SearchFilter]]:
        rng = np.random.default_rng((self.seed, 99, count))
        products = rng.integers(len(self.products), size=count)
        noise = rng.standard_normal((count, self.dim), dtype=np.float32) * (0.7 / np.sqrt(self.dim))
        vectors = _unit(self.products[products] + noise)
        filters = []
        for i, product in enumerate(products):
            kind = i % 3
            if kind == 0:
                filters.append(SearchFilter(supplier_kind="factory", max_moq=300))
            elif kind == 1:
                filters.append(SearchFilter(certifications=("CE",)))
            else:
                filters.append(SearchFilter(
                    categories=(CATEGORIES[int(self.product_category[product])],)))
        return vectors, filters


def _unit(rows: np.ndarray) -> np.ndarray:
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def exact_top(catalog: SyntheticCatalog, queries: np.ndarray,
              mask_sets: list[list[np.ndarray | None]], k: int, chunk: int
              ) -> list[list[set[int]]]:
    """Exact top-``k`` listing rows per query (inner product over every vector), once per set
    of per-query masks (``None``: unfiltered), in one pass over the regenerated vectors."""
    nq = len(queries)
    best = [(np.full((nq, k), -np.inf, np.float32), np.full((nq, k), -1, np.int64))
            for _ in mask_sets]
    for start in range(0, catalog.n, chunk):
        stop = min(catalog.n, start + chunk)
        chunk_scores = queries @ catalog.vectors(start, stop).T
        rows = np.broadcast_to(np.arange(start, stop), chunk_scores.shape)
        for slot, masks in enumerate(mask_sets):
            scores = chunk_scores.copy()
            for q, mask in enumerate(masks):
                if mask is not None:
                    scores[q, ~mask[start:stop]] = -np.inf
            both_scores = np.concatenate([best[slot][0], scores], axis=1)
            both_rows = np.concatenate([best[slot][1], rows], axis=1)
            top = np.argpartition(-both_scores, k - 1, axis=1)[:, :k]
            best[slot] = (np.take_along_axis(both_scores, top, axis=1),
                          np.take_along_axis(both_rows, top, axis=1))
    return [[{int(r) for r, score in zip(row_ids, row_scores) if score > -np.inf}
             for row_ids, row_scores in zip(ids, scores)] for scores, ids in best]


def timed_search(index, queries: np.ndarray, filters: list[SearchFilter | None], k: int
                 ) -> tuple[list[list[str]], np.ndarray]:
    found, ms = [], []
    for vector, search_filter in zip(queries, filters):
        start = time.perf_counter()
        hits = index.search(vector, k=k, filter=search_filter)
        ms.append((time.perf_counter() - start) * 1000)
        found.append([hit.listing_id for hit in hits])
    return found, np.array(ms)


def recall(found: list[list[str]], truth: list[set[int]], k: int) -> float:
    scores = []
    for ids, exact in zip(found, truth):
        if not exact:
            continue
        rows = {int(lid[1:]) for lid in ids[:k]}
        scores.append(len(rows & exact) / min(k, len(exact)))
    return float(np.mean(scores))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listings", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=150)
    parser.add_argument("--nlist", type=int, default=None, help="IVF lists (default sqrt(n))")
    parser.add_argument("--nprobe", type=int, default=16, help="IVF lists scanned per query")
    parser.add_argument("--chunk", type=int, default=25_000, help="listings per build batch")
    parser.add_argument("--dir", type=Path, default=None, help="where to save the index "
                        "(default: a temporary folder, removed at the end)")
    args = parser.parse_args(argv)
    k = 10

    from agents.run import limit_blas_threads
    from retrieval.embedders.descriptor import DescriptorEmbedder

    embedder = DescriptorEmbedder()
    dim = embedder.dim
    n = args.listings
    nlist = args.nlist or max(1, round(np.sqrt(n)))
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    print(f"bench-scale: {n:,} synthetic listings x {dim} floats ({embedder.name} dimension), "
          f"IVF nlist={nlist} nprobe={args.nprobe}, {args.queries} queries, index at {folder}")
    say("generating catalog model")
    catalog = SyntheticCatalog(n, dim)

    # -- exact ground truth, first: the index is not needed for it, and memory is low ----------
    queries, filters = catalog.queries(args.queries)
    t1 = time.perf_counter()
    masks = [catalog.mask(f) for f in filters]
    pass_share = float(np.mean([m.mean() for m in masks]))
    truth_plain, truth_filtered = exact_top(catalog, queries, [[None] * len(queries), masks],
                                            k, args.chunk)
    del masks
    say(f"exact search for {2 * len(queries)} queries in {time.perf_counter() - t1:.0f} s")

    # -- build: train on a sample, then add batch by batch --------------------------------------
    t0 = time.perf_counter()
    index = FaissIndex(embedder.name, dim, index_type="ivf", nlist=nlist, nprobe=args.nprobe,
                       embedder_version=embedder.version, info={"catalog": "synthetic"})
    sample_rows = min(n, 20 * nlist)
    index.train(catalog.vectors(0, sample_rows))
    say(f"trained {nlist} lists on {sample_rows:,} vectors in {time.perf_counter() - t0:.0f} s")
    for start in range(0, n, args.chunk):
        stop = min(n, start + args.chunk)
        index.add(catalog.records(start, stop), catalog.vectors(start, stop))
        if (stop // args.chunk) % 8 == 0 or stop == n:
            say(f"added {stop:,}/{n:,}")
    index.compact()
    build_s = time.perf_counter() - t0
    say(f"built in {build_s:.0f} s")

    # -- save, free, load -----------------------------------------------------------------------
    t2 = time.perf_counter()
    index.save(folder)
    save_s = time.perf_counter() - t2
    size_gib = sum(p.stat().st_size for p in folder.iterdir()) / GIB
    say(f"saved in {save_s:.0f} s ({size_gib:.2f} GiB on disk)")
    del index
    gc.collect()
    t3 = time.perf_counter()
    index = open_index(folder, expected_embedder=embedder.name, expected_dim=dim,
                       nprobe=args.nprobe)
    load_s = time.perf_counter() - t3
    say(f"loaded in {load_s:.0f} s")

    # -- search: as a service runs it (SourcingRunner.warm_up: one BLAS thread per request) -----
    limit_blas_threads()
    timed_search(index, queries[:5], [None] * 5, k)  # first touches of the lists
    found_plain, ms_plain = timed_search(index, queries, [None] * len(queries), k)
    found_filtered, ms_filtered = timed_search(index, queries, filters, k)
    rec_plain = recall(found_plain, truth_plain, k)
    rec_filtered = recall(found_filtered, truth_filtered, k)
    peak = peak_gib()
    say("searched")

    vectors_gib = n * dim * 4 / GIB
    print()
    print(f"| what ({n:,} listings, dim {dim}, IVF nlist {nlist}, nprobe {args.nprobe}) | value |")
    print("|---|---|")
    print(f"| build (train + add) | {build_s:.0f} s |")
    print(f"| save / load | {save_s:.0f} s / {load_s:.0f} s ({size_gib:.2f} GiB on disk; "
          f"raw vectors {vectors_gib:.2f} GiB) |")
    print(f"| unfiltered search p50 / p95 | {np.percentile(ms_plain, 50):.1f} / "
          f"{np.percentile(ms_plain, 95):.1f} ms |")
    print(f"| filtered search p50 / p95 (mean share passing {pass_share:.1%}) | "
          f"{np.percentile(ms_filtered, 50):.1f} / {np.percentile(ms_filtered, 95):.1f} ms |")
    print(f"| recall@10 vs exact, unfiltered / filtered | {rec_plain:.3f} / {rec_filtered:.3f} |")
    print(f"| peak memory (max resident set) | {peak:.2f} GiB |")
    print()

    failed = []
    for name, value, ok, target in (
            ("unfiltered p95", np.percentile(ms_plain, 95), None, f"<= {TARGET_P95_MS} ms"),
            ("filtered p95", np.percentile(ms_filtered, 95), None, f"<= {TARGET_P95_MS} ms"),
            ("unfiltered recall@10", rec_plain, rec_plain >= TARGET_RECALL,
             f">= {TARGET_RECALL}"),
            ("filtered recall@10", rec_filtered, rec_filtered >= TARGET_RECALL,
             f">= {TARGET_RECALL}"),
            ("peak memory GiB", peak, peak < TARGET_PEAK_GIB, f"< {TARGET_PEAK_GIB}")):
        if ok is None:
            ok = value <= TARGET_P95_MS
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {value:.3f} (target {target})")
        if not ok:
            failed.append(name)
    if args.dir is None:
        shutil.rmtree(folder, ignore_errors=True)
    if failed:
        print(f"bench-scale: targets not met: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("bench-scale: all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
