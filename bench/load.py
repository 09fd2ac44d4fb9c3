"""Load a running API with photo searches or whole runs and report what it sustains.

    python -m bench.load --url http://127.0.0.1:8000 --route search --clients 4 --seconds 30

``--clients`` threads each keep one connection open and post the demo catalog's reserved query
photos in turn (real photos, so the server decodes, embeds, searches and re-ranks as it would for
a seller) until ``--seconds`` have passed; then it prints requests per second, latency p50 / p95
and the answers by status. It starts no server: point it at one (``make serve``, or
``uvicorn --factory api.app:create_app --workers N``) to size a deployment. Give the server a rate
limit above what is sent (``SOURCING_RATE_LIMIT``), or the 429s are what gets measured. Exits 1
when any request was answered with something other than 200, or not at all.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROUTES = {"search": ("/v1/search/image", {"k": "10"}),
          "run": ("/v1/runs", {"market": "US"})}


def load(url: str, route: str, photos: list[tuple[str, bytes]], clients: int, seconds: float,
         api_key: str | None = None) -> tuple[list[float], Counter, float]:
    """Latencies (s) of the answered requests, answers by status (``error`` for no answer) and
    the seconds the load lasted."""
    import httpx

    path, form = ROUTES[route]
    headers = {"X-API-Key": api_key} if api_key else {}
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    start = time.perf_counter()
    stop = start + seconds

    def client(offset: int) -> None:
        turn = offset
        with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
            while time.perf_counter() < stop:
                name, data = photos[turn % len(photos)]
                turn += clients
                began = time.perf_counter()
                try:
                    status = http.post(path, files={"image": (name, data, "image/jpeg")},
                                       data=form).status_code
                except httpx.HTTPError:
                    status = "error"
                spent = time.perf_counter() - began
                with lock:
                    statuses[status] += 1
                    if status != "error":
                        latencies.append(spent)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load a running API with photo searches or runs.")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--route", choices=sorted(ROUTES), default="search",
                        help="search: POST /v1/search/image; run: POST /v1/runs (market US)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent connections")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--photos", type=int, default=24, help="reserved demo photos sent in turn")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.photos < 1:
        parser.error("--clients, --seconds and --photos must be positive")

    from bench.bench import RESERVED, pct
    from evals.sets import load_eval_set

    photos = [(Path(case.image).name, Path(case.image).read_bytes())
              for case in load_eval_set(RESERVED)[:args.photos]]
    print(f"loading {args.url}{ROUTES[args.route][0]} with {args.clients} clients for "
          f"{args.seconds:.0f} s ({len(photos)} photos in turn)", flush=True)
    latencies, statuses, lasted = load(args.url, args.route, photos, args.clients, args.seconds,
                                       args.api_key)
    answered = sum(count for status, count in statuses.items() if status == 200)
    print(f"requests: {sum(statuses.values())} in {lasted:.1f} s; by status: "
          f"{dict(sorted(statuses.items(), key=str))}")
    if not latencies:
        print("no answer: is the server up at --url?", file=sys.stderr)
        return 1
    print(f"200s per second: {answered / lasted:.1f}; latency p50 / p95: "
          f"{pct(latencies, 50) * 1000:.0f} / {pct(latencies, 95) * 1000:.0f} ms")
    return 0 if answered == sum(statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
