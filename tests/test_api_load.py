"""With eight runs in flight, /healthz keeps answering: runs work in threads, off the event loop.
A stopping server lets a started run finish and store its result.

The runs are held inside the graph (their image embedder waits at a gate) while the test asks
/healthz or stops the app, so "in flight" is a fact the test checks, not a matter of timing; then
the gate opens and every run must finish with a shortlist.
"""

from __future__ import annotations

import dataclasses
import threading

import httpx
from fastapi.testclient import TestClient

from api.app import create_app
from agents.graph import build_graph
from api.jobs import RunQueue, RunRequest
from api.store import RunStore
from tests.api_support import QUERY_PHOTO, QUERY_SUPPLIER, live_server

RUNS = 8


class GatedEmbedder:
    """The real embedder behind a gate: each call checks in, then waits until the gate opens."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.gate = threading.Event()
        self.arrived = threading.Semaphore(0)

    def embed_images(self, images):
        self.arrived.release()
        if not self.gate.wait(timeout=300):
            raise RuntimeError("the test never opened the gate")
        return self.inner.embed_images(images)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_healthz_answers_with_eight_runs_in_flight(demo_services, demo_settings, tmp_path):
    embedder = GatedEmbedder(demo_services.image_embedder)
    services = dataclasses.replace(demo_services, image_embedder=embedder)
    settings = demo_settings.model_copy(update={"runs_db": tmp_path / "runs.sqlite3",
                                                "run_workers": RUNS})
    photo = QUERY_PHOTO.read_bytes()
    with live_server(create_app(services=services, settings=settings)) as base:
        answers: list[httpx.Response] = []

        def one_run() -> None:
            with httpx.Client(base_url=base, timeout=600) as http:
                answers.append(http.post("/v1/runs", files={"image": ("q.jpg", photo)},
                                         data={"market": "US"}))

        threads = [threading.Thread(target=one_run) for _ in range(RUNS)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(RUNS):  # every run has reached the embedder and waits there
                assert embedder.arrived.acquire(timeout=300), "a run never started"
            with httpx.Client(base_url=base, timeout=60) as http:
                health = http.get("/healthz")
                listed = http.get("/v1/runs", params={"limit": 50}).json()["items"]
        finally:
            embedder.gate.set()
            for thread in threads:
                thread.join(timeout=600)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "runs_in_flight": RUNS}
    assert [item["status"] for item in listed] == ["running"] * RUNS
    assert [answer.status_code for answer in answers] == [200] * RUNS
    for answer in answers:
        suppliers = [item["supplier"]["supplier_id"] for item in answer.json()["shortlist"]]
        assert QUERY_SUPPLIER in suppliers


def test_a_stopping_server_lets_a_started_run_finish(demo_services, demo_settings, tmp_path):
    embedder = GatedEmbedder(demo_services.image_embedder)
    services = dataclasses.replace(demo_services, image_embedder=embedder)
    settings = demo_settings.model_copy(update={"runs_db": tmp_path / "runs.sqlite3"})
    with TestClient(create_app(services=services, settings=settings)) as client:
        accepted = client.post("/v1/runs?mode=async", files={"image": ("q.jpg",
                                                                        QUERY_PHOTO.read_bytes())},
                               data={"market": "US"})
        assert accepted.status_code == 202
        assert embedder.arrived.acquire(timeout=300), "the run never started"
        # the app stops while the run waits inside the graph; the gate opens during the stop
        threading.Timer(0.5, embedder.gate.set).start()
    record = RunStore(settings.runs_db).get(accepted.json()["id"])
    assert record.status == "succeeded" and record.result["shortlist"]


def test_shutdown_grace_runs_out_on_a_run_that_does_not_finish(demo_services, tmp_path):
    embedder = GatedEmbedder(demo_services.image_embedder)
    services = dataclasses.replace(demo_services, image_embedder=embedder)
    store = RunStore(tmp_path / "runs.sqlite3")
    queue = RunQueue(store, workers=1)
    graph = build_graph()
    started = queue.submit(store.create({"market": "US"}), services, graph,
                           QUERY_PHOTO.read_bytes(), RunRequest("US", "q.jpg"))
    waiting = queue.submit(store.create({"market": "US"}), services, graph,
                           QUERY_PHOTO.read_bytes(), RunRequest("US", "q.jpg"))
    assert embedder.arrived.acquire(timeout=300)
    try:
        assert queue.shutdown(grace_s=0.2) == 1  # the started run is still held at the gate
        assert waiting.cancelled() and queue.in_flight == 1
        assert store.cancel_queued() == 1
    finally:
        embedder.gate.set()
    assert started.result(timeout=300)["shortlist"] and queue.in_flight == 0
