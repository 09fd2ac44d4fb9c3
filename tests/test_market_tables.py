"""Marketplace tables beyond the bundled US one: a folder with the two CSV files and a
``market.json`` naming its market, label and currency, loaded by setting; prices in another
currency are reported in it and never mixed with the USD costs."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path

import pytest

from agents.compliance.rules import RuleBook
from agents.market.tools import (
    AmazonMarketData,
    MarketTableError,
    load_market_tables,
    read_market_file,
)
from agents.run import SourcingRunner
from agents.shortlist.node import _sale_price
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
US_TABLE = ROOT / "data" / "market" / "amazon_us_2023"
RULES = ROOT / "data" / "rules" / "compliance"
PHOTO = ROOT / "data" / "catalogs" / "luma" / "images" / "mh07-green_main.jpg"
UK_PRICES = [12.5, 15.0, 18.0, 22.0, 30.0]  # GBP


def write_table(folder: Path, market: str = "UK", currency: str = "GBP",
                about: dict | None = None) -> Path:
    """A small marketplace table: one clothing category with five priced listings."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "amazon_categories.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["id", "category_name"], [1, "Men's Clothing"],
                                      [2, "Kitchen & Dining"]])
    header = ["asin", "title", "imgUrl", "productURL", "stars", "reviews", "price", "listPrice",
              "category_id", "isBestSeller", "boughtInLastMonth"]
    rows = [[f"B0UK{i:06d}", f"Men's hoodie sweatshirt {i}", "", "", 4.0 + i / 10, 10 * i, price,
             0, 1, "False", 50 * i] for i, price in enumerate(UK_PRICES)]
    with (folder / "amazon_products.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    body = about if about is not None else {"market": market, "label": f"Amazon {market} test",
                                            "currency": currency}
    (folder / "market.json").write_text(json.dumps(body), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def rulebook() -> RuleBook:
    return RuleBook.load(RULES)


def canonical(rulebook: RuleBook):
    return lambda code: rulebook.market_rules(code).market


def test_the_bundled_table_describes_itself() -> None:
    table = AmazonMarketData.load(US_TABLE)
    assert (table.market, table.label, table.currency) == ("US", "Amazon US 2023", "USD")
    assert table.price_band(104)["currency"] == "USD"


def test_a_second_market_is_keyed_by_its_code_with_its_currency(tmp_path: Path,
                                                                 rulebook: RuleBook) -> None:
    uk = write_table(tmp_path / "amazon_uk")
    tables = load_market_tables([US_TABLE, uk], canonical(rulebook))
    assert sorted(tables) == ["UK", "US"]
    band = tables["UK"].price_band(1)
    assert band["currency"] == "GBP" and band["n"] == 5 and band["median"] == 18.0
    assert tables["UK"].source == "Amazon UK test sample (5 listings per category)"


def test_a_member_state_table_serves_its_union(tmp_path: Path, rulebook: RuleBook) -> None:
    tables = load_market_tables([write_table(tmp_path / "de", "de", "EUR")], canonical(rulebook))
    assert list(tables) == ["EU"] and tables["EU"].market == "EU"


@pytest.mark.parametrize("about, problem", [
    (None, "missing"),
    ("not json", "not valid JSON"),
    ([], "must hold a JSON object"),
    ({"market": "UK", "label": "x"}, "field 'currency'"),
    ({"market": "", "label": "x", "currency": "GBP"}, "field 'market'"),
    ({"market": "UK", "label": "x", "currency": "pounds"}, "ISO 4217"),
])
def test_a_bad_market_file_is_refused_naming_it(tmp_path: Path, about, problem: str) -> None:
    folder = write_table(tmp_path / "t")
    path = folder / "market.json"
    if about is None:
        path.unlink()
    else:
        path.write_text(about if isinstance(about, str) else json.dumps(about), encoding="utf-8")
    with pytest.raises(MarketTableError, match=problem) as caught:
        read_market_file(path)
    assert str(path) in str(caught.value)


def test_a_market_without_rules_and_a_market_twice_are_refused(tmp_path: Path,
                                                               rulebook: RuleBook) -> None:
    with pytest.raises(ValueError, match="unknown market 'XX'") as caught:
        load_market_tables([write_table(tmp_path / "xx", "XX", "USD")], canonical(rulebook))
    assert "market.json" in str(caught.value) and "known markets" in str(caught.value)
    with pytest.raises(ValueError, match="two marketplace tables for market US"):
        load_market_tables([US_TABLE, write_table(tmp_path / "us2", "US", "USD")],
                           canonical(rulebook))
    with pytest.raises(MarketTableError, match="not found"):
        load_market_tables([tmp_path / "nowhere"], canonical(rulebook))


def test_settings_read_folders_as_a_path_list(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    assert Settings().market_dirs == [US_TABLE]
    monkeypatch.setenv("SOURCING_MARKET_DIRS", f"{US_TABLE}{os.pathsep}{tmp_path}")
    assert Settings().market_dirs == [US_TABLE, tmp_path]
    monkeypatch.delenv("SOURCING_MARKET_DIRS")
    monkeypatch.setenv("SOURCING_MARKET_DIR", str(tmp_path))  # the former one-folder setting
    assert Settings().market_dirs == [tmp_path]
    monkeypatch.setenv("SOURCING_MARKET_DIR", os.pathsep)
    with pytest.raises(ValueError, match="names no folder"):
        Settings()


def test_a_median_in_another_currency_is_not_used_as_the_sale_price() -> None:
    market = {"market": "UK", "available": True, "category": {"category_id": 1},
              "price_band": {"currency": "GBP", "median": 18.0, "n": 5}}
    evidence = {"derived:price_band:UK:1:median": {"value": 18.0}}
    price, price_id, _, reason = _sale_price({}, market, evidence)
    assert price is None and price_id is None
    assert reason == ("market prices in GBP, costs in USD: no exchange rate is bundled, so sale "
                      "price, referral fee and margin are unknown")
    # the same median in the costs' currency is used, as the US one is
    market["price_band"]["currency"] = "USD"
    assert _sale_price({}, market, evidence)[:2] == (18.0, "derived:price_band:UK:1:median")


def test_a_run_in_a_market_with_its_own_table(demo_services, tmp_path: Path) -> None:
    uk = AmazonMarketData.load(write_table(tmp_path / "amazon_uk"))
    services = dataclasses.replace(demo_services,
                                   market_data={**demo_services.market_data, "UK": uk})
    result = SourcingRunner(services).run_file(PHOTO, "uk", sale_price=40.0)
    market = result["market"]
    assert market["available"] is True and market["market"] == "UK"
    band = market["price_band"]
    assert band["currency"] == "GBP" and band["median"] == 18.0
    # figures cite the table's own listings
    evidence = result["evidence"]
    assert {evidence[f"amazon_products.csv:B0UK{i:06d}:price"]["value"]
            for i in range(5)} == set(UK_PRICES)
    claim = next(c for c in result["claims"] if c["id"] == "m-price-band")
    assert "18.0 GBP" in claim["text"]
    # a USD sale price is not placed among GBP listing prices
    assert "sale_price_position" not in market
    assert any("no exchange rate" in warning for warning in result["warnings"])
    assert not any(c["id"] == "m-sale-price" for c in result["claims"])
    # costs and fees exist for the US only: the landed cost says what it lacks
    assert result["shortlist"]
    for item in result["shortlist"]:
        assert item["margin"] is None
        assert "no tariff data for UK: duty unknown (not guessed)" in item["landed_cost"][
            "missing"]
    assert result["grounding"]["unsupported"] == []
    # without the seller's price, the GBP median is not taken as a USD sale price
    result = SourcingRunner(services).run_file(PHOTO, "UK")
    for item in result["shortlist"]:
        assert item["margin"] is None
        assert any(gap.startswith("market prices in GBP, costs in USD: no exchange rate")
                   for gap in item["landed_cost"]["missing"])


def test_the_command_line_names_a_bad_table_before_anything_heavy_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import api.services
    from typer.testing import CliRunner

    from api.cli import app

    def no_catalog(*args, **kwargs):
        raise AssertionError("the catalog was loaded before the marketplace tables were checked")

    monkeypatch.setattr(api.services, "load_catalog", no_catalog)
    folder = write_table(tmp_path / "uk")
    (folder / "market.json").unlink()
    outcome = CliRunner().invoke(app, ["run", str(PHOTO), "--market", "US"],
                                 env={"SOURCING_MARKET_DIRS": f"{US_TABLE}{os.pathsep}{folder}"})
    assert outcome.exit_code == 2, outcome.output
    assert f"{folder / 'market.json'}: missing" in outcome.output
    assert "Traceback" not in outcome.output


def test_the_evaluator_recomputes_the_median_from_a_loaded_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evals.metrics import extra_metrics
    from evals.sets import EvalCase

    folder = write_table(tmp_path / "amazon_uk")
    monkeypatch.setenv("SOURCING_MARKET_DIRS", f"{US_TABLE}{os.pathsep}{folder}")
    result = {"market": {"market": "UK", "category": {"category_id": 1},
                         "price_band": {"median": 18.0 * 1.1, "currency": "GBP"}}}
    case = EvalCase(id="uk", market="UK", title="hoodie")
    assert extra_metrics(case, result)["price_band_error"] == pytest.approx(0.1)
    monkeypatch.delenv("SOURCING_MARKET_DIRS")  # without the setting, no UK table is known
    assert "price_band_error" not in extra_metrics(case, result)


def _set_cell(path: Path, line: int, column: str, value: str) -> None:
    """Rewrite one cell of a CSV file; ``line`` counts the header as line 1."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[line - 1][rows[0].index(column)] = value
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


@pytest.mark.parametrize("column, value, problem", [
    ("price", "inf", "price 'inf' is not a finite number"),
    ("price", "nan", "price 'nan' is not a finite number"),
    ("listPrice", "-inf", "listPrice '-inf' is not a finite number"),
    ("price", "-5", "price -5 is negative"),
    ("listPrice", "-0.5", "listPrice -0.5 is negative"),
    ("stars", "7.5", "stars 7.5 is outside 0..5"),
    ("stars", "-1", "stars -1 is outside 0..5"),
    ("reviews", "-3", "reviews -3 is negative"),
    ("reviews", "inf", "reviews 'inf' is not a finite number"),
    ("boughtInLastMonth", "-100", "boughtInLastMonth -100 is negative"),
    ("asin", "B0UK000000", "asin B0UK000000 repeats line 2"),
    ("asin", " ", "asin is empty"),
    ("category_id", "99999", "category_id 99999 is not in amazon_categories.csv"),
])
def test_a_bad_listing_is_refused_naming_file_line_and_field(tmp_path: Path, column: str,
                                                             value: str, problem: str) -> None:
    folder = write_table(tmp_path / "uk")
    _set_cell(folder / "amazon_products.csv", 4, column, value)
    with pytest.raises(MarketTableError) as caught:
        AmazonMarketData.load(folder)
    assert str(caught.value) == (f"{folder / 'amazon_products.csv'}: line 4: bad listing row: "
                                 f"{problem}")


def test_zero_and_empty_prices_still_mean_not_stated(tmp_path: Path) -> None:
    folder = write_table(tmp_path / "uk")
    _set_cell(folder / "amazon_products.csv", 2, "price", "")
    _set_cell(folder / "amazon_products.csv", 3, "price", "0")
    table = AmazonMarketData.load(folder)
    assert [row.price for row in table.listings] == [None, None, *UK_PRICES[2:]]
    assert table.price_band(1)["n"] == 3


def test_a_repeated_category_id_is_refused(tmp_path: Path) -> None:
    folder = write_table(tmp_path / "uk")
    _set_cell(folder / "amazon_categories.csv", 3, "id", "1")
    with pytest.raises(MarketTableError) as caught:
        AmazonMarketData.load(folder)
    assert str(caught.value) == (f"{folder / 'amazon_categories.csv'}: line 3: bad category "
                                 "row: id 1 repeats line 2")


def test_a_products_file_without_listings_is_refused(tmp_path: Path) -> None:
    folder = write_table(tmp_path / "uk")
    path = folder / "amazon_products.csv"
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(MarketTableError, match="no listings") as caught:
        AmazonMarketData.load(folder)
    assert str(path) in str(caught.value)
