"""Running sourcing graphs off the event loop, with each node's start and end recorded.

Runs execute in a thread pool (``SOURCING_RUN_WORKERS`` threads), so the event loop keeps
answering (``/healthz``, event streams) while photos are decoded and graphs run. Progress comes
from LangGraph's ``tasks`` stream: every node start and end (with its time in ms) becomes an
event in the run store, which ``GET /v1/runs/{id}/events`` replays and follows.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from agents.context import Services
from agents.run import SourcingRunner
from api.store import RunStore

log = logging.getLogger("sourcing.runs")


class ObservedGraph:
    """A compiled graph whose ``invoke`` streams task events to ``on_event`` on the way.

    Handed to ``SourcingRunner(graph=...)``, it leaves the runner's request and result logic as is.
    """

    def __init__(self, graph: Any, on_event: Any) -> None:
        self.graph = graph
        self.on_event = on_event

    def invoke(self, request: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        final: dict[str, Any] = {}
        for mode, chunk in self.graph.stream(request, stream_mode=["tasks", "values"], **kwargs):
            if mode == "values":
                final = chunk
            elif "input" in chunk:
                self.on_event("node_start", {"node": chunk["name"]})
            else:
                update = chunk.get("result") or {}
                timings = update.get("timings") if isinstance(update, dict) else None
                data: dict[str, Any] = {"node": chunk["name"]}
                if isinstance(timings, dict) and chunk["name"] in timings:
                    data["ms"] = timings[chunk["name"]]
                if chunk.get("error") is not None:
                    data["error"] = str(chunk["error"])
                self.on_event("node_end", data)
        return final


@dataclass
class RunRequest:
    """What one run needs besides the photo, checked by the route before it is queued."""

    market: str
    image_name: str
    constraints: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, float] | None = None
    title: str | None = None
    description: str | None = None
    top_k: int | None = None
    sale_price: float | None = None
    shipping_mode: str | None = None


class RunQueue:
    SHUTDOWN_GRACE_S = 30.0  # how long a stopping server lets started runs finish

    def __init__(self, store: RunStore, workers: int) -> None:
        self.store = store
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sourcing-run")
        self._lock = threading.Lock()
        self._futures: set[Future] = set()  # runs queued or running in this process

    @property
    def in_flight(self) -> int:
        """Runs queued or running in this process."""
        return len(self._futures)

    def submit(self, run_id: str, services: Services, graph: Any, image_bytes: bytes,
               request: RunRequest) -> Future:
        future = self.executor.submit(self._run, run_id, services, graph, image_bytes, request)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future) -> None:
        with self._lock:
            self._futures.discard(future)

    def _run(self, run_id: str, services: Services, graph: Any, image_bytes: bytes,
             request: RunRequest) -> dict[str, Any] | None:
        self.store.set_running(run_id)
        observed = ObservedGraph(graph, lambda event, data: self.store.add_event(run_id, event,
                                                                                 data))
        try:
            result = SourcingRunner(services, graph=observed).run(
                image_bytes, request.market, image_name=request.image_name,
                constraints=request.constraints, weights=request.weights, title=request.title,
                description=request.description, top_k=request.top_k,
                sale_price=request.sale_price, shipping_mode=request.shipping_mode)
        except Exception as exc:  # the run fails; the server goes on
            log.exception("run %s failed", run_id)
            self.store.fail(run_id, f"{type(exc).__name__}: {exc}")
            return None
        self.store.succeed(run_id, result)
        return result

    def shutdown(self, grace_s: float | None = None) -> int:
        """Stop taking runs. Queued runs are cancelled (``RunStore.cancel_queued`` marks them
        failed); started ones get ``grace_s`` (default ``SHUTDOWN_GRACE_S``) to finish and store
        their result before the server reports itself stopped. Returns how many were still running
        when the grace ran out: those go on while the process exits, and if it is killed first,
        the next start marks them interrupted."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            started = list(self._futures)
        grace = self.SHUTDOWN_GRACE_S if grace_s is None else grace_s
        _, still_running = wait(started, timeout=grace)
        if still_running:
            log.warning("%d run(s) still running after %.0f s of shutdown grace",
                        len(still_running), grace)
        return len(still_running)
