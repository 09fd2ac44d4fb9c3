"""A catalog larger than the re-ranker's cache: whole runs with the catalog photos' local features
read from the features file (memory-mapped, ``retrieval.feature_store.StoredFeatures``) against
the same runs with the features the cache lacks computed at query time.

    python -m bench.rerank_store --cache 256 --photos 12

The demo catalog has 1,625 photos; ``--cache`` cuts the re-ranker's cache below that, so that most
candidates a run verifies are not in memory, as with a catalog of tens of thousands of photos
and the default cache of 4,096. Both sides run the same reserved photos through the same
services; only the re-ranker differs (no file attached: what start-up did before for a catalog
larger than the cache). Prints start-up (warm-up) time, run p50 / p95 and whether the two
shortlists are the same for every photo; exits 1 when they are not.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

from bench.bench import RESERVED, pct


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=int, default=256, help="re-ranker cache size (photos)")
    parser.add_argument("--photos", type=int, default=12, help="reserved demo photos run")
    args = parser.parse_args(argv)

    from agents.run import SourcingRunner
    from api.services import build_services
    from api.settings import Settings
    from evals.sets import load_eval_set
    from retrieval.images import read_photo_bytes
    from retrieval.rerank import LocalFeatureReranker

    base = build_services(Settings(), progress=False)
    cases = [(case, read_photo_bytes(case.image))
             for case in load_eval_set(RESERVED)[:args.photos]]
    photos = len({image for listing in base.catalog.listings.values() for image in listing.images})
    print(f"catalog: {photos:,} photos; re-ranker cache: {args.cache:,} photos", flush=True)
    shortlists = {}
    for label, store in (("features the cache lacks computed at query time", None),
                         ("features the cache lacks read from the file", base.feature_store)):
        services = dataclasses.replace(base, reranker=LocalFeatureReranker(cache_size=args.cache),
                                       feature_store=store)
        runner = SourcingRunner(services)
        start = time.perf_counter()
        runner.warm_up()
        warm = time.perf_counter() - start
        times, picked = [], []
        for case, data in cases:
            start = time.perf_counter()
            result = runner.run(data, case.market, image_name=case.image.name)
            times.append(time.perf_counter() - start)
            picked.append([(item["supplier"]["supplier_id"], item["listing"]["listing_id"])
                           for item in result["shortlist"]])
        shortlists[label] = picked
        print(f"{label}: warm-up {warm:.1f} s; run p50 {statistics.median(times) * 1000:,.0f} ms, "
              f"p95 {pct(times, 95) * 1000:,.0f} ms ({len(times)} runs)", flush=True)
    computed, read = shortlists.values()
    same = sum(one == other for one, other in zip(computed, read))
    print(f"same shortlist for {same} of {len(computed)} photos")
    return 0 if same == len(computed) else 1


if __name__ == "__main__":
    sys.exit(main())
