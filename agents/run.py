"""Run the sourcing graph on one photo and return the result contract (a JSON-ready dict)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agents.context import Services
from agents.graph import build_graph
from retrieval.images import read_photo_bytes


class SourcingRunner:
    """Holds one compiled graph and the services; ``run`` may be called many times."""

    def __init__(self, services: Services, graph: Any = None) -> None:
        self.services = services
        self.graph = graph if graph is not None else build_graph()

    def warm_up(self) -> None:
        """Load what loads lazily (text model, category embeddings) before the first request."""
        for market_data in self.services.market_data.values():
            market_data.match_category(self.services.text_embedder, "warm up", top_n=1)

    def run(self, image_bytes: bytes, market: str, *, image_name: str = "image",
            constraints: dict[str, Any] | None = None, weights: dict[str, float] | None = None,
            title: str | None = None, description: str | None = None,
            top_k: int | None = None) -> dict[str, Any]:
        request: dict[str, Any] = {"image_bytes": image_bytes, "image_name": image_name,
                                   "market": market, "constraints": constraints or {}}
        for key, value in (("weights", weights), ("title", title),
                           ("description", description), ("top_k", top_k)):
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
