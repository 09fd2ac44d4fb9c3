"""``make bench``'s API measure compares the image-search route with a bare Starlette endpoint
doing the same work; that comparison only measures the API layer if the two answer the same.
(The bench's timings are not tested: tests check behaviour, never wall-clock time.)"""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from bench.bench import asgi_post, bare_app, multipart_body, stubbed_services
from tests.api_support import QUERY_PHOTO


def test_the_bare_same_work_endpoint_answers_as_the_route(demo_services, tmp_path):
    photo = QUERY_PHOTO.read_bytes()
    stubbed = stubbed_services(demo_services, photo)
    settings = Settings(runs_db=tmp_path / "runs.sqlite3", index_dir=tmp_path / "unused")
    upload = {"image": ("photo.jpg", photo, "image/jpeg")}
    with TestClient(create_app(services=stubbed, settings=settings)) as route, \
            TestClient(bare_app(stubbed)) as bare:
        ours = route.post("/v1/search/image", files=upload, data={"k": "10"})
        same = bare.post("/search", files=upload, data={"k": "10"})
        only_upload = bare.post("/upload", files=upload)
    assert ours.status_code == same.status_code == 200
    assert ours.json() == same.json()
    assert len(ours.json()["hits"]) == 10
    assert only_upload.json() == {"bytes": len(photo)}


def test_the_served_measure_posts_the_route_s_form(demo_services, tmp_path):
    """The body the served measure hands each app as ASGI is a valid upload for all of them."""
    photo = QUERY_PHOTO.read_bytes()
    stubbed = stubbed_services(demo_services, photo)
    settings = Settings(runs_db=tmp_path / "runs.sqlite3", index_dir=tmp_path / "unused")
    body = multipart_body(photo)
    apps = [(create_app(services=stubbed, settings=settings), "/v1/search/image"),
            (bare_app(stubbed), "/search"), (bare_app(stubbed), "/upload")]
    statuses = [asyncio.run(asgi_post(app, path, body)) for app, path in apps]
    assert statuses == [200, 200, 200]
