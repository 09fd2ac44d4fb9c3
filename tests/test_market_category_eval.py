"""The market-category eval: its gold file is checked line by line, it scores listings and
products with and without trade boilerplate, and its command runs on the demo catalog."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from evals.market_category import load_market_gold, market_category_eval

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "evals" / "sets" / "market_gold" / "market_gold.csv"
KNOWN = ("Home Appliances", "Kitchen & Dining", "Packaging & Shipping Supplies",
         "Men's Clothing")


def _gold(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gold.csv"
    path.write_text("product_id,categories,reason\n" + text, encoding="utf-8")
    return path


def test_gold_file_is_read_with_every_category_of_a_product(tmp_path):
    gold = load_market_gold(_gold(tmp_path, "toaster,Home Appliances | Kitchen & Dining,"
                                            "small appliance\n"), KNOWN)
    assert gold["toaster"].categories == {"Home Appliances", "Kitchen & Dining"}
    assert gold["toaster"].reason == "small appliance"


@pytest.mark.parametrize(("text", "message"), [
    ("toaster,Home Appliance,typo\n", "gold.csv:2: not a category of the marketplace data: "
                                      "Home Appliance"),
    ("toaster,Home Appliances,\ntoaster,Kitchen & Dining,\n", "gold.csv:3: product toaster is "
                                                              "labelled twice"),
    ("toaster,,\n", "gold.csv:2: a product_id and at least one category are required"),
    ("", "gold.csv: no labelled products"),
])
def test_a_bad_gold_file_is_refused_naming_the_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_market_gold(_gold(tmp_path, text), KNOWN)


def test_a_gold_file_without_its_columns_is_refused(tmp_path):
    path = tmp_path / "gold.csv"
    path.write_text("product,category\nx,y\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing column"):
        load_market_gold(path)


def test_the_bundled_gold_names_only_categories_of_the_bundled_marketplace_data():
    from agents.market.tools import AmazonMarketData

    data = AmazonMarketData.load(ROOT / "data" / "market" / "amazon_us_2023")
    gold = load_market_gold(GOLD, data.categories.values())
    assert len(gold) == 218 and all(entry.reason for entry in gold.values())


@dataclass(frozen=True)
class Row:
    listing_id: str
    product_id: str | None
    category: str
    title: str


class TradeWordsMarket:
    """A marketplace whose matcher falls for the word "Shipping", as MiniLM did, and tells a
    tee from a toaster only with the categories' listing titles."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, bool]] = []

    def match_category(self, embedder, query, top_n=3, use_titles=True):
        self.queries.append((query, use_titles))
        if "Shipping" in query:
            name = "Packaging & Shipping Supplies"
        elif "Tee" in query and use_titles:
            name = "Men's Clothing"
        else:
            name = "Home Appliances"
        return [{"category_id": 1, "name": name, "score": 0.5}]


def test_the_eval_scores_every_variant_over_listings_and_products(tmp_path):
    gold = load_market_gold(_gold(tmp_path, "toaster,Home Appliances,\n"
                                            "tee,Men's Clothing,\n"), KNOWN)
    rows = [Row("L1", "toaster", "Kitchen -> Toasters", "Hot Sale Toaster Fast Shipping"),
            Row("L2", "toaster", "Kitchen -> Toasters", "Toaster"),
            Row("L3", "toaster", "Kitchen -> Toasters", "Toaster Free Shipping"),
            Row("L4", "tee", "Men/Tops/Tees", "Tee Fast Shipping"),
            Row("L5", None, "Men/Tops/Tees", "Tee without a product")]
    market = TradeWordsMarket()
    report = market_category_eval(market, embedder=None, listings=rows, gold=gold)
    assert (report["n_listings"], report["n_products"]) == (4, 2)
    metrics = report["metrics"]
    # as runs: no "Shipping" left in any query, and the titles place the tee
    assert metrics["as_shipped_listings_top1"]["value"] == 1.0
    assert metrics["as_shipped_products_top1"]["value"] == 1.0
    # as written: three of four listings fall for it; the toaster's majority (2 of 3) too
    for variant in ("boilerplate_kept", "names_only_boilerplate_kept"):
        assert metrics[f"{variant}_listings_top1"]["value"] == 0.25
        assert metrics[f"{variant}_products_top1"]["value"] == 0.0
    # names alone: the toasters are right, the tee is not
    assert metrics["names_only_listings_top1"]["value"] == 0.75
    assert metrics["names_only_products_top1"]["value"] == 0.5
    assert report["confusions"]["boilerplate_kept"][0] == {
        "catalog_category": "Kitchen -> Toasters", "picked": "Packaging & Shipping Supplies",
        "listings": 2}
    assert report["confusions"]["as_shipped"] == []
    by_id = {row["listing_id"]: row for row in report["listings"]}
    assert by_id["L4"] == {"listing_id": "L4", "product_id": "tee",
                           "as_shipped": "Men's Clothing",
                           "boilerplate_kept": "Packaging & Shipping Supplies",
                           "names_only": "Home Appliances",
                           "names_only_boilerplate_kept": "Packaging & Shipping Supplies"}
    # the same words are matched once
    assert len(market.queries) == len(set(market.queries))


def test_a_catalog_without_labelled_products_is_refused(tmp_path):
    gold = load_market_gold(_gold(tmp_path, "toaster,Home Appliances,\n"), KNOWN)
    with pytest.raises(ValueError, match="no listing of the catalog"):
        market_category_eval(TradeWordsMarket(), None, [Row("L1", "kettle", "K", "Kettle")],
                             gold)


def test_the_command_runs_on_the_demo_catalog(tmp_path):
    from typer.testing import CliRunner

    from api.cli import app

    gold = _gold(tmp_path, "2-slice-toaster,Home Appliances | Kitchen & Dining,appliance\n"
                           "24-MB01,Travel Duffel Bags,duffel bag\n")
    env = {"HF_HUB_OFFLINE": "1"}
    outcome = CliRunner().invoke(app, ["eval", "market-category", "--gold", str(gold),
                                       "--out", str(tmp_path)], env=env)
    assert outcome.exit_code == 0, outcome.output
    report = json.loads((tmp_path / "market_category.json").read_text())
    assert report["n_products"] == 2 and report["n_listings"] >= 2
    assert {"as_shipped_listings_top1", "boilerplate_kept_products_top1"} <= \
        set(report["metrics"])
    assert "boilerplate removed (as runs)" in outcome.output
    assert "names only, boilerplate kept (before)" in outcome.output

    unknown = CliRunner().invoke(app, ["eval", "market-category", "--gold", str(gold),
                                       "--market", "Atlantis"], env=env)
    assert unknown.exit_code == 2 and "unknown market 'Atlantis'" in unknown.output
    no_table = CliRunner().invoke(app, ["eval", "market-category", "--gold", str(gold),
                                        "--market", "JP"], env=env)
    assert no_table.exit_code == 2 and "no marketplace data for market 'JP'" in \
        no_table.output, no_table.output
