"""Run the sourcing graph on one photo and return the result contract (a JSON-ready dict)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.context import Services
from agents.graph import build_graph
from agents.shortlist.landed_cost import checked_sale_price, checked_shipping_mode
from retrieval.images import read_photo_bytes

if TYPE_CHECKING:
    from retrieval.feature_store import WarmReport


def limit_blas_threads() -> None:
    """One BLAS thread per caller for the rest of the process.

    A request multiplies small matrices (the re-ranker's 500 x 500 feature similarities, one
    query against a few thousand vectors) from several threads at once (graph branches, API
    workers). Multi-threaded OpenBLAS only adds hand-over and spinning there: on a busy 2-core
    machine a request took 7 s instead of 0.4 s. Heavy batch work (index builds) runs in other
    processes and keeps its threads.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class SourcingRunner:
    """Holds one compiled graph and the services; ``run`` may be called many times."""

    def __init__(self, services: Services, graph: Any = None) -> None:
        self.services = services
        self.graph = graph if graph is not None else build_graph()

    def warm_up(self) -> None:
        """Load what loads lazily before the first request: the text model and category
        embeddings (read from ``Settings.cache_dir`` after the first start-up), and the
        re-ranker's features of every catalog photo (from the feature store, computing only what
        it lacks), so that no request pays for them."""
        limit_blas_threads()
        for market_data in self.services.market_data.values():
            market_data.match_category(self.services.text_embedder, "warm up", top_n=1)
        self.warm_reranker()

    def warm_reranker(self) -> WarmReport | None:
        """Cache the local features of the catalog's photos in the re-ranker, or attach them
        from the features file when the catalog has more photos than its cache holds (see
        ``retrieval.feature_store``); skipped without a re-ranker that takes preloaded
        features."""
        from retrieval.feature_store import warm_catalog

        reranker = self.services.reranker
        if reranker is None or not hasattr(reranker, "preload"):
            return None
        return warm_catalog(reranker, self.services.catalog, self.services.feature_store)

    def run(self, image_bytes: bytes, market: str, *, image_name: str = "image",
            constraints: dict[str, Any] | None = None, weights: dict[str, float] | None = None,
            title: str | None = None, description: str | None = None,
            top_k: int | None = None, sale_price: float | None = None,
            shipping_mode: str | None = None) -> dict[str, Any]:
        """One run. ``sale_price`` (USD) and ``shipping_mode`` (express, air, sea) replace the
        market's median price and the mode chosen by shipment weight in the landed cost and
        margin; a bad value raises ``ValueError`` naming it before the graph starts."""
        request: dict[str, Any] = {"image_bytes": image_bytes, "image_name": image_name,
                                   "market": market, "constraints": constraints or {}}
        for key, value in (("weights", weights), ("title", title),
                           ("description", description), ("top_k", top_k),
                           ("sale_price", checked_sale_price(sale_price)),
                           ("shipping_mode", checked_shipping_mode(shipping_mode))):
            if value is not None:
                request[key] = value
        start = time.perf_counter()
        state = self.graph.invoke(request, context=self.services)
        result = dict(state["result"])
        timings = dict(state.get("timings") or {})
        timings["total"] = round((time.perf_counter() - start) * 1000, 2)
        result["timings"] = timings
        return result

    def run_file(self, path: str | Path, market: str, **options: Any) -> dict[str, Any]:
        path = Path(path)
        return self.run(read_photo_bytes(path), market, image_name=path.name, **options)
