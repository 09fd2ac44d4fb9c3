"""Landed cost and margin against examples worked by hand from the bundled, cited tables
(data/trade/costs/*.csv and the US HTS 2024). Each example writes its arithmetic out."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.market.trade import TradeData, fulfilment_fee, referral_fee
from agents.shortlist.grounding import ground
from agents.shortlist.landed_cost import (
    SELLER_PRICE_BASIS,
    checked_sale_price,
    checked_shipping_mode,
    choose_mode,
    landed_cost,
)
from data.catalog.schema import Listing, Supplier

TRADE = Path(__file__).resolve().parents[1] / "data" / "trade"
FACTORY = Supplier("S1", "Ningbo Test Factory", kind="factory", country="CN")


@pytest.fixture(scope="module")
def trade() -> TradeData:
    return TradeData(TRADE)


def tee(weight: float = 0.2) -> Listing:
    tiers = [{"min_qty": 100, "unit_price": 5.0}, {"min_qty": 500, "unit_price": 4.65},
             {"min_qty": 2000, "unit_price": 4.3}]
    return Listing("L1", "S1", "Cotton T-shirt", ("a.jpg",), hs_code="610910", price_min=4.3,
                   price_max=5.0, currency="USD", moq=100, weight_kg=weight,
                   attributes={"price_tiers": tiers})


def kettle() -> Listing:
    return Listing("L2", "S1", "Electric kettle 1.7 l", ("k.jpg",), hs_code="851679",
                   price_min=12.0, price_max=12.0, currency="USD", moq=300, weight_kg=1.2,
                   attributes={"price_tiers": [{"min_qty": 300, "unit_price": 12.0}]})


def test_cotton_tee_at_500_pieces_by_hand(trade):
    """500 pieces x 0.2 kg = 100 kg shipment -> air (over 20 kg, up to 500 kg).
    unit price (tier 500)                         4.65
    freight   0.2 kg x 5.50 USD/kg (air)          1.10
    duty      4.65 x (16.5 % HTS 6109.10.00 + 7.5 % Section 301 List 4A) = 4.65 x 0.24
              = 1.116                             1.12
    referral  19.99 sale price in 15..20 USD -> 10 % = 1.999     2.00
    FBA       apparel, 0.2 kg is in the 4-8 oz band              4.63
    landed unit cost                              13.50
    margin    19.99 - 13.50 = 6.49 USD; 6.49 / 19.99 = 32.47 %  -> 32.5 %"""
    evidence = {"derived:price_band:US:1:median": {"value": 19.99}}
    cost, margin = landed_cost(trade, evidence, market="US", listing=tee(), supplier=FACTORY,
                               hs_code="610910", quantity=500, sale_price=19.99,
                               sale_price_id="derived:price_band:US:1:median")
    assert cost["freight"]["mode"] == "air" and cost["freight"]["shipment_kg"] == 100.0
    assert cost["unit_price"] == 4.65
    assert cost["freight"]["per_unit"] == 1.10
    assert cost["duty"]["general_rate_pct"] == 16.5 and cost["duty"]["rate_pct"] == 24.0
    assert cost["duty"]["additional"][0]["heading"] == "9903.88.15"
    assert cost["duty"]["per_unit"] == 1.12
    assert cost["fees"]["referral_pct"] == 10.0 and cost["fees"]["referral_per_unit"] == 2.00
    assert cost["fees"]["fulfilment_per_unit"] == 4.63
    assert cost["unit_cost"] == 13.50 and cost["complete"] is True
    assert margin["per_unit"] == 6.49 and margin["pct"] == 32.5
    # every figure of the breakdown is an evidence record holding that value
    for eid in cost["evidence"] + margin["evidence"]:
        assert eid in evidence, eid
    assert evidence[cost["unit_cost_evidence"]]["value"] == 13.50


def test_tee_across_price_tiers_by_hand(trade):
    """Same freight (1.10), fees (2.00 + 4.63) and duty rate (24 %) at each tier:
    tier 100:  5.00 + 5.00 x 0.24 = 1.20 -> 5.00 + 1.20 + 7.73 = 13.93; margin 6.06 (30.3 %)
    tier 500:  4.65 + 1.12 + 7.73 = 13.50; margin 6.49 (32.5 %)
    tier 2000: 4.30 + 4.30 x 0.24 = 1.032 -> 1.03; 4.30 + 1.03 + 7.73 = 13.06; margin 6.93
               (6.93 / 19.99 = 34.67 % -> 34.7 %)"""
    evidence = {"derived:price_band:US:1:median": {"value": 19.99}}
    cost, _ = landed_cost(trade, evidence, market="US", listing=tee(), supplier=FACTORY,
                          hs_code="610910", quantity=500, sale_price=19.99,
                          sale_price_id="derived:price_band:US:1:median")
    rows = [(t["min_qty"], t["unit_cost"], t["margin_per_unit"], t["margin_pct"])
            for t in cost["by_tier"]]
    assert rows == [(100, 13.93, 6.06, 30.3), (500, 13.50, 6.49, 32.5),
                    (2000, 13.06, 6.93, 34.7)]


def test_kettle_at_moq_without_additional_duty_row_is_flagged_incomplete(trade):
    """No quantity asked: the MOQ (300) is used; 300 x 1.2 kg = 360 kg -> air.
    unit price 12.00; freight 1.2 x 5.50 = 6.60; duty 12.00 x 2.7 % (HTS 8516.79.00.00) = 0.324
    -> 0.32; referral 15 % of 39.99 = 5.9985 -> 6.00; FBA non-apparel 1.2 kg (2.5-3 lb band)
    6.39. Landed 12.00 + 6.60 + 0.32 + 6.00 + 6.39 = 31.31; margin 39.99 - 31.31 = 8.68
    (21.7 %). The additional-duty table holds no row for 8516 from CN, so the figure is marked
    incomplete rather than a rate being guessed."""
    evidence = {"derived:price_band:US:7:median": {"value": 39.99}}
    cost, margin = landed_cost(trade, evidence, market="US", listing=kettle(), supplier=FACTORY,
                               hs_code="851679", quantity=None, sale_price=39.99,
                               sale_price_id="derived:price_band:US:7:median")
    assert cost["quantity"] == 300 and cost["quantity_basis"] == "the listing's MOQ"
    assert cost["freight"]["mode"] == "air" and cost["freight"]["per_unit"] == 6.60
    assert cost["duty"]["per_unit"] == 0.32 and cost["duty"]["additional"] == []
    assert cost["fees"]["referral_per_unit"] == 6.00
    assert cost["fees"]["fulfilment_per_unit"] == 6.39
    assert cost["unit_cost"] == 31.31
    assert margin["per_unit"] == 8.68 and margin["pct"] == 21.7
    assert cost["complete"] is False and margin["complete"] is False
    assert any("additional-duty table holds no row for 851679" in m for m in cost["missing"])


def test_freight_by_mode_by_hand(trade):
    """0.2 kg: express 0.2 x 9.00 = 1.80, air 0.2 x 5.50 = 1.10, sea 0.2 x 0.45 = 0.09."""
    cost, _ = landed_cost(trade, {}, market="US", listing=tee(), supplier=FACTORY,
                          hs_code="610910", quantity=50, sale_price=None)
    assert cost["freight"]["by_mode"] == {"express": 1.80, "air": 1.10, "sea": 0.09}
    assert cost["freight"]["mode"] == "express"  # 50 x 0.2 = 10 kg
    assert choose_mode(20.0) == "express" and choose_mode(20.1) == "air"
    assert choose_mode(500.0) == "air" and choose_mode(501.0) == "sea"


def test_market_without_tariff_data_says_so_and_gives_no_cost(trade):
    cost, margin = landed_cost(trade, {}, market="EU", listing=tee(), supplier=FACTORY,
                               hs_code="610910", quantity=500, sale_price=None)
    assert cost["unit_cost"] is None and margin is None
    assert "no tariff data for EU: duty unknown (not guessed)" in cost["missing"]
    assert cost["duty"]["rate_pct"] is None


def test_compound_watch_rate_is_not_guessed(trade):
    general = trade.general_duty("US", "910211")
    assert general["lines"] and general["rate_pct"] is None


def test_referral_fee_bands_minimum_and_portions_by_hand(trade):
    clothing = trade.referral_rows("US", "610910")
    # 5 % of 5.00 = 0.25, below the 0.30 minimum
    assert referral_fee(clothing, 5.0)[0] == pytest.approx(0.30)
    # over 20 USD: 17 % of 25.00 = 4.25
    assert referral_fee(clothing, 25.0)[0] == pytest.approx(4.25)
    watches = trade.referral_rows("US", "910211")
    # 16 % of the first 1500 (240.00) + 3 % of the 100 above (3.00) = 243.00
    assert referral_fee(watches, 1600.0)[0] == pytest.approx(243.0)
    # hair dryer: 8516.31 falls in Beauty, Health & Personal Care (longest prefix), 15 % over 10
    assert trade.referral_rows("US", "851631")[0].get("fee_category") == \
        "Beauty, Health & Personal Care"
    assert trade.referral_rows("US", "851679")[0].get("fee_category") == "Home & Kitchen"


def test_fulfilment_fee_per_half_pound_above_3_lb_by_hand(trade):
    """3.0 kg non-apparel: 3.0 - 1.3608 = 1.6392 kg above 3 lb = 7.23 half-pounds -> 8 steps;
    7.17 + 8 x 0.16 = 8.45."""
    row = trade.fulfilment_row("US", 3.0, apparel=False)
    assert fulfilment_fee(row, 3.0) == pytest.approx(8.45)


def test_cost_claims_pass_the_grounding_check(trade):
    from agents.shortlist.node import _cost_claims

    evidence = {"derived:price_band:US:1:median": {"source": "derived", "value": 19.99}}
    cost, margin = landed_cost(trade, evidence, market="US", listing=tee(), supplier=FACTORY,
                               hs_code="610910", quantity=500, sale_price=19.99,
                               sale_price_id="derived:price_band:US:1:median")
    claims = _cost_claims(1, cost, margin, evidence)
    assert [c["id"] for c in claims] == ["c1-duty", "c1-landed", "c1-margin"]
    kept, report = ground(claims, evidence)
    assert report["unsupported"] == [] and len(kept) == 3
    assert "13.5 USD" in claims[1]["text"] and "(32.5 %)" in claims[2]["text"]


def test_seller_price_and_sea_freight_at_500_pieces_by_hand(trade):
    """The seller sells at 24.99 USD and ships by sea (weight alone would choose air).
    unit price (tier 500)                         4.65
    freight   0.2 kg x 0.45 USD/kg (sea)          0.09
    duty      as above                            1.12
    referral  24.99 over 20 USD -> 17 % = 4.2483  4.25
    FBA       as above                            4.63
    landed unit cost                              14.74
    margin    24.99 - 14.74 = 10.25 USD; 10.25 / 24.99 = 41.02 % -> 41.0 %"""
    from agents.evidence import cite
    from agents.shortlist.node import _cost_claims

    evidence: dict = {}
    price_id = cite(evidence, "request", "pricing", "sale_price", 24.99, currency="USD")
    mode_id = cite(evidence, "request", "pricing", "shipping_mode", "sea")
    cost, margin = landed_cost(trade, evidence, market="US", listing=tee(), supplier=FACTORY,
                               hs_code="610910", quantity=500, sale_price=24.99,
                               sale_price_id=price_id, sale_price_basis=SELLER_PRICE_BASIS,
                               mode="sea", mode_id=mode_id)
    freight = cost["freight"]
    assert freight["mode"] == "sea" and freight["mode_basis"] == "the seller's choice"
    assert freight["per_unit"] == 0.09 and freight["mode_evidence"] == mode_id
    assert cost["fees"]["referral_pct"] == 17.0 and cost["fees"]["referral_per_unit"] == 4.25
    assert cost["unit_cost"] == 14.74
    assert (margin["sale_price"], margin["per_unit"], margin["pct"]) == (24.99, 10.25, 41.0)
    assert margin["sale_price_basis"] == SELLER_PRICE_BASIS
    assert evidence[margin["evidence"][0]]["source"] == "request"
    assert "seller's sale price" in evidence[margin["evidence"][1]]["method"]
    claims = _cost_claims(1, cost, margin, evidence)
    kept, report = ground(claims, evidence)
    assert report["unsupported"] == [] and len(kept) == 3
    assert "by sea" in claims[1]["text"]
    assert claims[2]["text"].startswith("Margin at the seller's sale price 24.99 USD: 10.25 USD")


def test_without_a_named_mode_the_weight_chooses_and_says_so(trade):
    cost, _ = landed_cost(trade, {}, market="US", listing=tee(), supplier=FACTORY,
                          hs_code="610910", quantity=500, sale_price=None)
    assert cost["freight"]["mode"] == "air" and cost["freight"]["mode_basis"] == "shipment weight"


@pytest.mark.parametrize("value", [0, -1, "nan", float("inf"), 2_000_000, "abc", [1]])
def test_a_bad_sale_price_is_refused_naming_it(value):
    with pytest.raises(ValueError, match="sale_price"):
        checked_sale_price(value)


def test_pricing_checks_pass_good_values_and_none():
    assert checked_sale_price("24.99") == 24.99 and checked_sale_price(None) is None
    assert [checked_shipping_mode(m) for m in ("express", "air", "sea", None)] == [
        "express", "air", "sea", None]
    with pytest.raises(ValueError, match="shipping_mode: expected one of express, air, sea"):
        checked_shipping_mode("boat")


def test_a_sale_price_no_candidate_could_use_is_warned_about(trade):
    """In a market without tariff, fee or marketplace data the seller's price gives no margin;
    the result says so instead of only echoing the price."""
    from agents.shortlist.node import _unused_pricing

    eu_cost, eu_margin = landed_cost(trade, {}, market="EU", listing=tee(), supplier=FACTORY,
                                     hs_code="610910", quantity=500, sale_price=30.0,
                                     sale_price_id="request:pricing:sale_price",
                                     sale_price_basis=SELLER_PRICE_BASIS, mode="sea")
    assert eu_margin is None
    eu = [{"landed_cost": eu_cost, "margin": eu_margin}]
    state = {"market": "EU", "sale_price": 30.0, "shipping_mode": "sea"}
    [warning] = _unused_pricing(state, eu)
    assert warning.startswith("sale_price 30.0 USD and shipping_mode sea not used: no "
                              "shortlisted candidate has a landed cost in EU, so no margin")
    assert "no tariff data for EU: duty unknown (not guessed)" in warning
    assert _unused_pricing({**state, "shipping_mode": None}, eu)[0].startswith(
        "sale_price 30.0 USD not used:")
    us_cost, us_margin = landed_cost(trade, {}, market="US", listing=tee(), supplier=FACTORY,
                                     hs_code="610910", quantity=500, sale_price=30.0,
                                     sale_price_id="request:pricing:sale_price",
                                     sale_price_basis=SELLER_PRICE_BASIS)
    assert us_margin is not None  # one candidate with a margin used the price: no warning
    assert _unused_pricing({**state, "market": "US"},
                           [*eu, {"landed_cost": us_cost, "margin": us_margin}]) == []
    assert _unused_pricing({"market": "EU"}, eu) == []  # no price given, nothing unused
    assert _unused_pricing(state, []) == []  # nothing shortlisted: the exclusions say why
