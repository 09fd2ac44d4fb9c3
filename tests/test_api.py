"""The HTTP API on the demo catalog: runs (sync, async, events, paging, delete), stored runs
surviving a restart, runs cut short by a crash marked failed, search, compliance, catalog."""

from __future__ import annotations

import io
import json
import re

import jsonschema
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from agents.shortlist.node import DEFAULT_WEIGHTS, MAX_WEIGHT
from api.app import create_app
from api.store import INTERRUPTED, RunStore
from tests.api_support import QUERY_PHOTO, QUERY_SUPPLIER
from tests.conftest import REPO

SCHEMA = json.loads((REPO / "api" / "schemas" / "result.schema.json").read_text())


@pytest.fixture(scope="module")
def settings(demo_settings, tmp_path_factory):
    return demo_settings.model_copy(update={
        "runs_db": tmp_path_factory.mktemp("runs") / "runs.sqlite3"})


@pytest.fixture(scope="module")
def client(demo_services, settings):
    with TestClient(create_app(services=demo_services, settings=settings)) as client:
        yield client


@pytest.fixture(scope="module")
def sync_run(client):
    response = client.post("/v1/runs", files={"image": (QUERY_PHOTO.name, QUERY_PHOTO.read_bytes(),
                                                        "image/jpeg")},
                           data={"market": "US", "constraints": "{}"})
    return response


def test_sync_run_returns_the_result_contract(sync_run):
    assert sync_run.status_code == 200, sync_run.text
    result = sync_run.json()
    jsonschema.validate(result, SCHEMA)
    assert QUERY_SUPPLIER in [item["supplier"]["supplier_id"] for item in result["shortlist"]]
    assert sync_run.headers["x-request-id"]
    assert sync_run.headers["location"] == f"/v1/runs/{sync_run.headers['x-run-id']}"


def test_stored_run_holds_request_result_and_timings(client, sync_run):
    record = client.get(sync_run.headers["location"]).json()
    assert record["status"] == "succeeded"
    assert record["result"] == sync_run.json()
    assert record["request"]["market"] == "US"
    assert record["image_sha256"] == sync_run.json()["request"]["image_sha256"]
    assert set(record["timings"]) >= {"intake", "supplier_match", "market", "compliance",
                                      "shortlist", "total"}


def test_async_run_streams_node_events_then_the_result(client):
    accepted = client.post("/v1/runs?mode=async",
                           files={"image": ("q.jpg", QUERY_PHOTO.read_bytes(), "image/jpeg")},
                           data={"market": "DE", "constraints": json.dumps({"max_moq": 500})})
    assert accepted.status_code == 202, accepted.text
    run_id = accepted.json()["id"]
    events = []
    with client.stream("GET", accepted.json()["links"]["events"]) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
    names = [name for name, _ in events]
    assert names[0] == "queued" and names[-1] == "succeeded"
    ends = {data["node"]: data for name, data in events if name == "node_end"}
    assert set(ends) == {"intake", "supplier_match", "market", "compliance", "shortlist", "writer"}
    assert all(data["ms"] >= 0 for data in ends.values())
    starts = [data["node"] for name, data in events if name == "node_start"]
    assert starts[0] == "intake" and starts[-1] == "writer"
    record = client.get(f"/v1/runs/{run_id}").json()
    assert record["status"] == "succeeded"
    assert record["result"]["compliance"]["rules_market"] == "EU"
    # a replay after the end gives the same events, and resumes after Last-Event-ID
    with client.stream("GET", f"/v1/runs/{run_id}/events",
                       headers={"Last-Event-ID": "2"}) as stream:
        replay = [line for line in stream.iter_lines() if line.startswith("id:")]
    assert replay[0] == "id: 3" and len(replay) == len(events) - 2


def test_runs_are_listed_newest_first_in_pages(client, sync_run):
    second = client.post("/v1/runs", files={"image": ("q.jpg", QUERY_PHOTO.read_bytes())},
                         data={"market": "US"})
    assert second.status_code == 200
    ids = []
    cursor = None
    while True:
        page = client.get("/v1/runs", params={"limit": 1, **({"before": cursor} if cursor else {})})
        assert page.status_code == 200
        body = page.json()
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sync_run.headers["x-run-id"] in ids and len(ids) == len(set(ids)) >= 2
    assert ids.index(second.headers["x-run-id"]) < ids.index(sync_run.headers["x-run-id"])


def test_a_cursor_past_64_bits_is_refused_not_a_server_error(client):
    response = client.get("/v1/runs", params={"before": 2**63})
    assert response.status_code == 422
    assert "before" in response.text
    assert client.get("/v1/runs", params={"before": 2**63 - 1}).status_code == 200


def test_delete_removes_a_run(client):
    response = client.post("/v1/runs", files={"image": ("q.jpg", QUERY_PHOTO.read_bytes())},
                           data={"market": "US"})
    run_id = response.headers["x-run-id"]
    assert client.delete(f"/v1/runs/{run_id}").status_code == 204
    assert client.get(f"/v1/runs/{run_id}").status_code == 404
    assert client.delete(f"/v1/runs/{run_id}").status_code == 404


@pytest.mark.parametrize("field,value,needle", [
    ("market", "XX", "unknown market"),
    ("constraints", "{not json", "not valid JSON"),
    ("constraints", '{"max_moq": -3}', "max_moq: must be at least 1"),
    ("constraints", '{"colour": "red"}', "unknown constraint"),
    ("weights", '{"visual": "high"}', "non-negative number"),
])
def test_bad_run_input_is_422_naming_the_problem(client, field, value, needle):
    data = {"market": "US", field: value}
    response = client.post("/v1/runs", files={"image": ("q.jpg", QUERY_PHOTO.read_bytes())},
                           data=data)
    assert response.status_code == 422
    assert needle in response.json()["detail"] and response.json()["request_id"]


def test_a_run_at_the_sellers_price_and_shipping_mode(client):
    response = client.post("/v1/runs", files={"image": ("q.jpg", QUERY_PHOTO.read_bytes())},
                           data={"market": "US", "sale_price": "30", "shipping_mode": "sea"})
    assert response.status_code == 200, response.text
    result = response.json()
    jsonschema.validate(result, SCHEMA)
    assert result["request"]["sale_price"] == 30.0 and result["request"]["shipping_mode"] == "sea"
    costed = [item for item in result["shortlist"] if item["margin"]]
    assert costed, "no candidate got a margin"
    evidence = result["evidence"]
    for item in costed:
        freight, margin = item["landed_cost"]["freight"], item["margin"]
        assert freight["mode"] == "sea" and freight["mode_basis"] == "the seller's choice"
        assert evidence[freight["mode_evidence"]] == {
            "source": "request", "record_id": "pricing", "field": "shipping_mode",
            "value": "sea"}
        assert margin["sale_price"] == 30.0
        assert margin["per_unit"] == round(30.0 - item["landed_cost"]["unit_cost"], 2)
        assert evidence[margin["evidence"][0]]["value"] == 30.0
    claim = next(c for c in result["claims"] if c["id"] == "c1-margin")
    assert claim["text"].startswith("Margin at the seller's sale price 30.0 USD")
    # the market agent places the price among the category's listing prices, cited
    position = result["market"]["sale_price_position"]
    prices = [evidence[eid]["value"] for eid in evidence[position["evidence"][1]]["inputs"][1:]]
    assert position["n"] == len(prices) == result["market"]["price_band"]["n"]
    assert position["listings_cheaper"] == sum(price < 30.0 for price in prices)
    claim = next(c for c in result["claims"] if c["id"] == "m-sale-price")
    assert claim["text"].startswith(f"The seller's sale price 30.0 USD is above "
                                    f"{position['listings_cheaper']} of the {position['n']} ")
    stored = client.get(response.headers["location"]).json()["request"]
    assert (stored["sale_price"], stored["shipping_mode"]) == (30.0, "sea")
    assert not any("not used" in warning for warning in result["warnings"])  # it was used


def _stored_run_ids(client) -> list[str]:
    return [item["id"] for item in client.get("/v1/runs", params={"limit": 100}).json()["items"]]


@pytest.mark.parametrize("weights,needle", [
    (json.dumps({name: 0 for name in DEFAULT_WEIGHTS}), "weights: all are zero"),
    ('{"visual": 1e308, "price": 1e308}', f"weights.visual: must be at most {MAX_WEIGHT:g}"),
    ('{"price": 1' + "0" * 400 + "}", f"weights.price: must be at most {MAX_WEIGHT:g}"),
    ('{"visual": 1e999}', "weights.visual: expected a non-negative number"),
])
def test_weights_the_shortlist_cannot_rank_by_are_422_and_store_no_run(client, weights, needle):
    """Refused at request time, not left to fail inside the graph as a stored failed run."""
    before = _stored_run_ids(client)
    response = client.post("/v1/runs", files={"image": ("q.jpg", QUERY_PHOTO.read_bytes())},
                           data={"market": "US", "weights": weights})
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]
    assert _stored_run_ids(client) == before


def test_a_sale_price_unused_in_a_market_without_data_is_warned_about(client):
    response = client.post("/v1/runs", files={"image": ("q.jpg", QUERY_PHOTO.read_bytes())},
                           data={"market": "EU", "sale_price": "30"})
    assert response.status_code == 200, response.text
    result = response.json()
    jsonschema.validate(result, SCHEMA)
    assert result["request"]["sale_price"] == 30.0
    assert result["shortlist"] and not any(item["margin"] for item in result["shortlist"])
    [warning] = [w for w in result["warnings"] if w.startswith("sale_price 30.0 USD not used")]
    assert "no shortlisted candidate has a landed cost in EU, so no margin" in warning
    assert "no tariff data for EU" in warning


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("size", [(2000, 1), (1, 2000), (3000, 3)])
def test_a_very_wide_or_tall_photo_is_searched_not_a_server_error(client, size):
    response = client.post("/v1/search/image", files={"image": ("strip.png", _png(size))},
                           data={"k": "3"})
    assert response.status_code == 200, response.text
    assert len(response.json()["hits"]) == 3


def test_a_run_on_a_one_pixel_strip_succeeds(client):
    response = client.post("/v1/runs", files={"image": ("strip.png", _png((2000, 1)))},
                           data={"market": "US"})
    assert response.status_code == 200, response.text
    result = response.json()
    jsonschema.validate(result, SCHEMA)
    assert result["shortlist"]


@pytest.mark.parametrize("field,value", [
    ("sale_price", "0"), ("sale_price", "-5"), ("sale_price", "nan"), ("sale_price", "inf"),
    ("sale_price", "2000000"), ("sale_price", "cheap"), ("shipping_mode", "boat"),
])
def test_a_bad_price_or_shipping_mode_is_422_naming_the_field(client, field, value):
    response = client.post("/v1/runs", files={"image": ("q.jpg", QUERY_PHOTO.read_bytes())},
                           data={"market": "US", field: value})
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["body", field]]


def test_a_stored_run_survives_a_restart(demo_services, settings, tmp_path):
    settings = settings.model_copy(update={"runs_db": tmp_path / "runs.sqlite3"})
    with TestClient(create_app(services=demo_services, settings=settings)) as first:
        response = first.post("/v1/runs", files={"image": ("q.jpg", QUERY_PHOTO.read_bytes())},
                              data={"market": "US"})
        assert response.status_code == 200
        run_id, result = response.headers["x-run-id"], response.json()
    with TestClient(create_app(services=demo_services, settings=settings)) as second:
        record = second.get(f"/v1/runs/{run_id}").json()
    assert record["status"] == "succeeded" and record["result"] == result


def test_a_run_cut_short_by_a_crash_is_marked_failed_on_start_up(demo_services, settings,
                                                                 tmp_path):
    path = tmp_path / "runs.sqlite3"
    crashed = RunStore(path)
    run_id = crashed.create({"market": "US", "image_sha256": "ab" * 32})
    crashed.set_running(run_id)
    # the process that owned it is gone: a pid that cannot be alive on this host
    with crashed._connect() as db:
        db.execute("UPDATE runs SET owner=? WHERE id=?",
                   (crashed.owner.replace(crashed.owner.split(":")[1], "999999999", 1), run_id))
    settings = settings.model_copy(update={"runs_db": path})
    with TestClient(create_app(services=demo_services, settings=settings)) as client:
        record = client.get(f"/v1/runs/{run_id}").json()
        assert record["status"] == "failed" and record["error"] == INTERRUPTED
        with client.stream("GET", f"/v1/runs/{run_id}/events") as stream:
            lines = [line for line in stream.iter_lines() if line.startswith("event:")]
    assert lines[-1] == "event: failed"


def test_search_by_image_and_by_text(client):
    by_image = client.post("/v1/search/image", files={"image": ("q.jpg", QUERY_PHOTO.read_bytes())},
                           data={"k": "5", "filter": '{"supplier_kind": "factory"}'})
    assert by_image.status_code == 200, by_image.text
    hits = by_image.json()["hits"]
    assert 0 < len(hits) <= 5 and all(hit["supplier_kind"] == "factory" for hit in hits)
    assert hits[0]["product_id"] == "MH01"
    assert client.get(hits[0]["image_url"]).headers["content-type"] == "image/jpeg"
    by_text = client.post("/v1/search/text", json={"query": "electric kettle", "k": 3})
    assert by_text.status_code == 200
    assert any("ettle" in hit["title"] for hit in by_text.json()["hits"])


def test_catalog_records_markets_and_text_compliance(client):
    supplier = client.get(f"/v1/suppliers/{QUERY_SUPPLIER}").json()
    assert supplier["supplier_id"] == QUERY_SUPPLIER and supplier["listing_ids"]
    listing = client.get(f"/v1/listings/{supplier['listing_ids'][0]}").json()
    assert listing["supplier_id"] == QUERY_SUPPLIER and listing["image_urls"]
    assert client.get("/v1/suppliers/NOPE").status_code == 404
    assert {market["code"] for market in client.get("/v1/markets").json()} >= {"US", "EU"}
    check = client.post("/v1/compliance/check", json={
        "market": "EU", "title": "Electric kettle 1.7 L 2200 W", "category": "Kitchen/Kettles",
        "attributes": {"voltage": "220-240V"}})
    assert check.status_code == 200
    acts = {req["legal_act"] for req in check.json()["requirements"]}
    assert "2014/35/EU" in acts  # the Low Voltage Directive for a mains kettle
    assert client.post("/v1/compliance/check", json={"market": "ZZ"}).status_code == 422


def test_catalog_photos_outside_the_catalog_are_not_served(client):
    for path in ("../README.md", "listings.csv", "images/../../../../etc/passwd"):
        assert client.get(f"/v1/images/{path}").status_code == 404


def test_probes_and_page(client):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["indexed_photos"] > 0
    page = client.get("/")
    assert page.status_code == 200 and "Find suppliers" in page.text
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links and all(link.startswith(("/", "#")) for link in links)  # no CDN: works offline
    assert client.get("/static/app.js").status_code == 200


def test_readyz_is_503_until_services_load(settings, tmp_path):
    broken = settings.model_copy(update={"runs_db": tmp_path / "r.sqlite3",
                                         "catalog_dir": tmp_path / "missing"})
    with TestClient(create_app(settings=broken)) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
        assert response.status_code == 503 and response.json()["ready"] is False
        assert client.get("/v1/markets").status_code == 503


def test_openapi_documents_every_route_and_the_result_contract(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/runs", "/v1/runs/{run_id}", "/v1/runs/{run_id}/events", "/v1/search/image",
            "/v1/search/text", "/v1/compliance/check", "/v1/suppliers/{supplier_id}",
            "/v1/listings/{listing_id}", "/v1/markets", "/healthz", "/readyz"} <= set(spec["paths"])
    assert "SourcingResult" in spec["components"]["schemas"]
    post = spec["paths"]["/v1/runs"]["post"]["responses"]
    assert {"200", "202", "413", "415", "422", "429"} <= set(post)


def test_a_hit_on_a_listing_the_catalog_no_longer_holds_is_left_out():
    """An index not yet updated after a listing left the catalog (start-up warns of it) still
    answers searches, through the API and the command line alike, without that listing."""
    from types import SimpleNamespace

    from api.routes.search import hit_rows
    from data.catalog.schema import Listing, Supplier
    from retrieval.index import ListingHit

    kept = Listing("L1", "S1", "Hoodie", ("a.jpg",), moq=10)
    catalog = SimpleNamespace(listings={"L1": kept}, suppliers={"S1": Supplier("S1", "Knit Co.")})
    hits = [ListingHit("L0", 0.9, "gone.jpg"), ListingHit("L1", 0.8, "a.jpg")]
    rows = hit_rows(SimpleNamespace(catalog=catalog), hits)
    assert [row["listing_id"] for row in rows] == ["L1"]
    assert rows[0]["supplier_id"] == "S1" and rows[0]["moq"] == 10


@pytest.mark.parametrize("words", [
    {"title": ""},
    {"title": "   ", "description": "\n\t"},
    {},
    {"category": "Kitchen/Kettles", "material": "steel"},  # no words about the product itself
])
def test_a_compliance_check_without_a_title_or_description_is_422(client, words):
    """As on the command line: with nothing to read, only generic rules would match, answered
    as if they were the product's requirements."""
    response = client.post("/v1/compliance/check", json={"market": "EU", **words})
    assert response.status_code == 422
    assert "give a non-blank title or description" in response.json()["detail"]
    # either one alone is enough
    for field in ("title", "description"):
        response = client.post("/v1/compliance/check",
                               json={"market": "EU", field: "Electric kettle 230V"})
        assert response.status_code == 200, response.text
