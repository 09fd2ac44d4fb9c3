"""The graph's shape is pinned by a Mermaid snapshot, and the agents run with fakes handed in
through the runtime context (no model, no disk)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agents.context import Services
from agents.graph import build_graph
from agents.run import SourcingRunner
from data.catalog.schema import Catalog, Listing, Supplier
from retrieval.embedders.base import l2_normalise
from retrieval.embedders.text import HashingTextEmbedder
from retrieval.index import ImageIndex, IndexEntry

SNAPSHOT = Path(__file__).parent / "snapshots" / "graph.mmd"


def test_graph_shape_matches_snapshot():
    drawn = build_graph().get_graph().draw_mermaid()
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(drawn)
    assert SNAPSHOT.exists(), "no snapshot: run with UPDATE_SNAPSHOTS=1 and review it"
    assert drawn == SNAPSHOT.read_text(), "graph changed: review, then UPDATE_SNAPSHOTS=1"


def test_unknown_node_name_is_refused():
    with pytest.raises(ValueError, match="unknown node name"):
        build_graph(nodes={"shortlsit": lambda state, runtime: {}})


class MeanColourEmbedder:
    """Fake image embedder: the photo's mean colour, centred. Deterministic and instant."""

    name = "mean-colour"
    dim = 3

    def embed_images(self, images):
        rows = [np.asarray(img.convert("RGB"), dtype=np.float32).mean(axis=(0, 1)) / 255 - 0.5
                for img in images]
        return l2_normalise(np.stack(rows))


class FixedRules:
    markets = ["US"]

    def market_rules(self, market):
        from types import SimpleNamespace

        from agents.compliance.rules import UnknownMarketError

        if market.strip().upper() != "US":
            raise UnknownMarketError(f"unknown market {market!r}; known markets: US")
        return SimpleNamespace(market="US")


COLOURS = {"red": (230, 20, 20), "green": (20, 200, 40), "blue": (20, 40, 220)}


def _png(colour):
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def services():
    suppliers = {
        "S1": Supplier("S1", "Cixi Red Factory", kind="factory", city="Cixi", province="Zhejiang",
                       country="CN", response_rate=0.9, response_hours=4, on_time_rate=0.95,
                       certifications=("CE",)),
        "S2": Supplier("S2", "Yiwu Trading", kind="trading_company", city="Yiwu",
                       response_rate=0.99, response_hours=1),
        "S3": Supplier("S3", "Ningbo Blue Factory", kind="factory"),
    }
    listings = {
        "L1": Listing("L1", "S1", "Red kettle", ("red.png",), product_id="P-RED",
                      category="Kitchen -> Kettles", hs_code="851671", price_min=8.0,
                      price_max=9.5, currency="USD", moq=100, lead_time_days=20),
        "L2": Listing("L2", "S2", "Red kettle hot sale", ("red2.png",), product_id="P-RED",
                      category="Kitchen -> Kettles", hs_code="851671", price_min=10.0,
                      price_max=12.0, currency="USD", moq=10),
        "L3": Listing("L3", "S3", "Blue blender", ("blue.png",), product_id="P-BLUE",
                      category="Kitchen -> Blenders", hs_code="850940"),
    }
    embedder = MeanColourEmbedder()
    photos = {"red.png": COLOURS["red"], "red2.png": (220, 30, 30), "blue.png": COLOURS["blue"]}
    entries = [IndexEntry(lid, listing.images[0]) for lid, listing in listings.items()]
    vectors = embedder.embed_images([Image.new("RGB", (8, 8), photos[e.image]) for e in entries])
    return Services(catalog=Catalog(Path("."), suppliers, listings), image_embedder=embedder,
                    index=ImageIndex(embedder.name, 3, entries, vectors),
                    text_embedder=HashingTextEmbedder(), rulebook=FixedRules())


def fake_market(state, runtime):
    return {"market_analysis": {"market": state["market"], "available": False,
                                "reason": "fake market"}}


def fake_compliance(state, runtime):
    return {"compliance": {"market": state["market"], "requirements": [], "questions": []}}


def test_agents_run_with_fakes_from_the_context(services):
    runner = SourcingRunner(services, build_graph(nodes={"market": fake_market,
                                                         "compliance": fake_compliance}))
    result = runner.run(_png(COLOURS["red"]), "us", image_name="red.png")
    assert result["product"]["category"] == "Kitchen -> Kettles"
    assert result["product"]["hs_candidates"][0]["code"] == "851671"
    ranked = [(item["supplier"]["supplier_id"], item["product_id"]) for item in result["shortlist"]]
    # the factory and the trader both sell the red kettle; the factory ranks first
    assert ranked[:2] == [("S1", "P-RED"), ("S2", "P-RED")]
    top = result["shortlist"][0]
    assert top["is_source"] and top["scores"]["source"] == 1.0 and top["scores"]["price"] == 1.0
    assert result["grounding"]["unsupported"] == []
    assert result["shortlist"][2]["unknown"]  # S3 states no service record: listed as unknown
    texts = {claim["id"]: claim["text"] for claim in result["claims"]}
    assert texts["c1-terms"] == ("Listing L1: unit price 8.0 to 9.5 USD, MOQ 100 pieces, "
                                 "lead time 20 days")


def test_unknown_market_is_refused_before_any_work(services):
    runner = SourcingRunner(services, build_graph(nodes={"market": fake_market,
                                                         "compliance": fake_compliance}))
    with pytest.raises(ValueError, match="unknown market 'XX'; known markets: US"):
        runner.run(_png(COLOURS["red"]), "XX")


def test_a_broken_photo_is_refused_with_its_name(services):
    runner = SourcingRunner(services, build_graph(nodes={"market": fake_market,
                                                         "compliance": fake_compliance}))
    with pytest.raises(ValueError, match="upload.jpg: not a recognised image"):
        runner.run(b"not an image at all", "US", image_name="upload.jpg")


def test_a_huge_photo_file_is_refused_before_it_is_read(services, tmp_path):
    import os

    from retrieval.images import MAX_BYTES

    runner = SourcingRunner(services, build_graph(nodes={"market": fake_market,
                                                         "compliance": fake_compliance}))
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(b"")
    os.truncate(huge, MAX_BYTES + 1)  # sparse: no disk or memory spent
    with pytest.raises(ValueError, match="huge.jpg: .* bytes is over the limit"):
        runner.run_file(huge, "US")
