"""The `sourcing` command line: index build refuses a bad catalog without touching the index;
`run --json` prints the result contract."""

from __future__ import annotations

import csv
import json

import jsonschema
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from api.cli import app
from retrieval.feature_store import StoredFeatures, recipe
from retrieval.rerank import LocalFeatureReranker
from tests.conftest import REPO

cli = CliRunner()
SCHEMA = json.loads((REPO / "api" / "schemas" / "result.schema.json").read_text())


def _write_catalog(folder, bad_price: bool = False):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for index, colour in enumerate(("red", "green", "blue")):
        image = Image.new("RGB", (64, 64), "white")
        ImageDraw.Draw(image).ellipse((10, 10, 54, 54), fill=colour)
        image.save(folder / "images" / f"p{index}.jpg")
    with open(folder / "suppliers.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["supplier_id", "name", "kind"])
        writer.writerow(["S1", "Ningbo Test Factory", "factory"])
    with open(folder / "listings.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["listing_id", "supplier_id", "title", "images", "price_min"])
        writer.writerow(["L1", "S1", "Red ball", "images/p0.jpg", "1.5"])
        writer.writerow(["L2", "S1", "Green ball", "images/p1.jpg",
                         "cheap" if bad_price else "2.5"])
        writer.writerow(["L3", "S1", "Blue ball", "images/p2.jpg", "3.5"])


def test_index_build_then_a_bad_row_fails_and_keeps_the_index(tmp_path):
    catalog, index = tmp_path / "catalog", tmp_path / "index"
    _write_catalog(catalog)
    first = cli.invoke(app, ["index", "build", "--catalog", str(catalog), "--out", str(index)])
    assert first.exit_code == 0, first.output
    assert "indexed 3 photos" in first.output
    assert "re-ranker features: 0 kept, 3 computed" in first.output
    store = tmp_path / "index.rerank-features.npz"  # beside the index, kept across rebuilds
    assert len(StoredFeatures(store, recipe(LocalFeatureReranker.name))) == 3
    before = {p.name: p.read_bytes() for p in index.iterdir()}

    _write_catalog(catalog, bad_price=True)
    second = cli.invoke(app, ["index", "build", "--catalog", str(catalog), "--out", str(index)])
    assert second.exit_code != 0
    assert "listings.csv:3: price_min:" in second.output
    assert "index was not written" in second.output
    assert {p.name: p.read_bytes() for p in index.iterdir()} == before


def test_run_json_validates_and_is_grounded(demo_services, demo_settings, demo_cases):
    env = {"SOURCING_INDEX_DIR": str(demo_settings.index_dir)}
    outcome = cli.invoke(app, ["run", str(demo_cases[0].image), "--market", "US", "--json"],
                         env=env)
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(outcome.stdout)
    jsonschema.validate(result, SCHEMA)
    assert result["shortlist"] and result["grounding"]["unsupported"] == []


def test_run_refuses_bad_market_image_price_and_constraints(demo_settings, demo_cases,
                                                            tmp_path, monkeypatch):
    """Refused before the models and the index load: a typo costs no start-up."""
    import api.services

    def no_services(*args, **kwargs):
        raise AssertionError("services were built for input that is refused")

    monkeypatch.setattr(api.services, "build_services", no_services)
    env = {"SOURCING_INDEX_DIR": str(demo_settings.index_dir)}
    unknown = cli.invoke(app, ["run", str(demo_cases[0].image), "--market", "XX"], env=env)
    assert unknown.exit_code == 2 and "unknown market 'XX'" in unknown.output
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    bad = cli.invoke(app, ["run", str(broken), "--market", "US"], env=env)
    assert bad.exit_code == 2 and "broken.jpg" in bad.output
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(demo_cases[0].image.read_bytes()[:3000])
    cut = cli.invoke(app, ["run", str(truncated), "--market", "US"], env=env)
    assert cut.exit_code == 2 and "truncated.jpg: corrupt or truncated image" in cut.output
    missing = cli.invoke(app, ["run", str(tmp_path / "nowhere.jpg")], env=env)
    assert missing.exit_code == 2 and "image not found" in missing.output
    search = cli.invoke(app, ["search", "image", str(broken)], env=env)
    assert search.exit_code == 2 and "broken.jpg" in search.output
    assert "corrupt or truncated image" in search.output
    photo = str(demo_cases[0].image)
    for options, needle in ((["--sale-price", "-3"], "sale_price: must be above 0"),
                            (["--sale-price", "nan"], "sale_price: must be above 0"),
                            (["--shipping-mode", "boat"], "expected one of express, air, sea"),
                            (["--constraints", "[1]"], "must be a JSON object"),
                            (["--constraints", '{"colour": "red"}'], "unknown constraint"),
                            # the API's bounds for top_k: 1 to 50
                            (["--top-k", "-3"], "Invalid value for '--top-k'"),
                            (["--top-k", "0"], "Invalid value for '--top-k'"),
                            (["--top-k", "51"], "Invalid value for '--top-k'")):
        refused = cli.invoke(app, ["run", photo, *options], env=env)
        assert refused.exit_code == 2 and needle in refused.output, (options, refused.output)


def test_the_readable_output_shows_the_models_text_when_a_model_wrote_some(demo_services,
                                                                          demo_cases):
    from agents.run import SourcingRunner
    from api import cli as cli_module

    result = SourcingRunner(demo_services).run_file(demo_cases[0].image, "US")
    with cli_module.out.capture() as plain:
        cli_module.print_result(result)
    assert "RFQ draft" not in plain.get() and "summary" not in plain.get()  # offline: none
    result["summary"] = [{"text": "S013 is the best match.", "evidence": []}]
    result["market"]["narrative"] = [{"text": "Demand is steady.", "evidence": []}]
    result["shortlist"][0]["rfq"] = {"en": "Please quote [300] pieces.", "zh": "请报 300 件的价格。",
                                     "evidence": [], "source": "model"}
    with cli_module.out.capture() as written:
        cli_module.print_result(result)
    text = written.get()
    assert "summary: S013 is the best match." in text and "  Demand is steady." in text
    assert f"RFQ draft for #1 {result['shortlist'][0]['supplier']['name']} (model;" in text
    assert "  en: Please quote [300] pieces." in text  # not read as markup
    assert "  zh: 请报 300 件的价格。" in text
