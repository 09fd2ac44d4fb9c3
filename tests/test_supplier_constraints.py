"""Hard constraints and price tiers used by supplier matching."""

import pytest

from agents.supplier_match.tools import Constraints, unit_price_at, violations
from data.catalog.schema import Listing, Supplier

LISTING = Listing("L1", "S1", "Hoodie", ("a.jpg",), price_min=8.0, price_max=10.0, moq=200,
                  attributes={"price_tiers": [{"min_qty": 200, "unit_price": 10.0},
                                              {"min_qty": 500, "unit_price": 9.0},
                                              {"min_qty": 1000, "unit_price": 8.0}]})
FACTORY = Supplier("S1", "Humen Knit Co.", kind="factory", capabilities=("oem", "samples"),
                   on_time_rate=0.9)


def test_unit_price_follows_tiers():
    assert unit_price_at(LISTING, 600) == 9.0
    assert unit_price_at(LISTING, 5000) == 8.0
    assert unit_price_at(LISTING, 10) == 10.0  # below the first tier: first tier's price
    assert unit_price_at(LISTING, None) == 10.0


def test_violations_name_each_failed_constraint():
    constraints = Constraints.from_dict({"max_moq": 100, "max_unit_price": 9.5, "quantity": 300,
                                         "supplier_kind": "trading_company",
                                         "capabilities": ["dropship"], "min_on_time_rate": 0.95})
    reasons = violations(LISTING, FACTORY, constraints)
    assert reasons == ["MOQ 200 > max_moq 100", "unit price 10.0 > max_unit_price 9.5",
                       "supplier kind factory is not trading_company",
                       "lacks capabilities: dropship", "on-time rate 0.9 < 0.95"]
    assert violations(LISTING, FACTORY, Constraints.from_dict({"max_moq": 500})) == []


def test_unknown_values_fail_the_constraints_that_need_them():
    bare = Listing("L2", "S2", "Bag", ("b.jpg",))
    reasons = violations(bare, Supplier("S2", "X"), Constraints(max_moq=10, max_unit_price=5.0,
                                                                min_on_time_rate=0.5))
    assert reasons == ["MOQ unknown", "unit price unknown", "on-time rate unknown"]


def test_bad_constraints_are_refused():
    with pytest.raises(ValueError, match="unknown constraint"):
        Constraints.from_dict({"max_mqo": 5})
    with pytest.raises(ValueError, match="max_moq: expected a number"):
        Constraints.from_dict({"max_moq": "lots"})
    with pytest.raises(ValueError, match="max_unit_price: must be at least 0"):
        Constraints.from_dict({"max_unit_price": -1})
    with pytest.raises(ValueError, match="min_margin_pct: must be at most 100"):
        Constraints.from_dict({"min_margin_pct": 120})
    with pytest.raises(ValueError, match="min_margin_pct: expected a number"):
        Constraints.from_dict({"min_margin_pct": "nan"})  # would switch the constraint off
    assert Constraints.from_dict({"min_margin_pct": "25"}).min_margin_pct == 25.0



@pytest.mark.parametrize("raw, message", [
    ({"supplier_kind": "Factory"}, "supplier_kind: expected one of factory, trading_company"),
    ({"capabilities": ["0em"]}, "capabilities: unknown '0em'; known: small_batch, oem"),
    ({"capabilities": "oem|wizardry"}, "capabilities: unknown 'wizardry'"),
    ({"capabilities": [1]}, "capabilities: expected a list of names"),
    ({"min_on_time_rate": 5}, "min_on_time_rate: must be at most 1"),
    ({"max_moq": True}, "max_moq: expected a number, got True"),
    ({"max_moq": 0}, "max_moq: must be at least 1"),
    ({"quantity": 0}, "quantity: must be at least 1"),
    ({"quantity": 2.5}, "quantity: expected a whole number"),
    ({"max_unit_price": float("inf")}, "max_unit_price: expected a number"),
    ({"quantity": 1e30}, "quantity: must be at most 10,000,000, got 1e\\+30"),
    ({"quantity": 10_000_001}, "quantity: must be at most 10,000,000"),
    ({"quantity": 10**400}, "quantity: must be at most 10,000,000"),  # no float overflow
    ({"max_moq": 10_000_001}, "max_moq: must be at most 10,000,000"),
    ({"max_unit_price": 1_000_000.01}, "max_unit_price: must be at most 1,000,000"),
])
def test_values_no_supplier_could_meet_are_refused_naming_the_constraint(raw, message):
    """A value outside the catalog's vocabulary or range would end the run empty, saying
    nothing; it is refused instead."""
    with pytest.raises(ValueError, match=f"constraint {message}"):
        Constraints.from_dict(raw)


def test_an_order_below_the_moq_fails_and_bounds_the_search():
    constraints = Constraints.from_dict({"quantity": 100})
    assert violations(LISTING, FACTORY, constraints) == ["MOQ 200 > quantity 100"]
    assert violations(LISTING, FACTORY, Constraints.from_dict({"quantity": 200})) == []
    assert constraints.search_filter().max_moq == 100
    both = Constraints.from_dict({"quantity": 300, "max_moq": 150})
    assert both.search_filter().max_moq == 150
    assert violations(LISTING, FACTORY, both) == ["MOQ 200 > max_moq 150"]


def test_the_sanity_bounds_are_inclusive_and_the_eval_schema_mirrors_them():
    import json
    from pathlib import Path

    from agents.shortlist.landed_cost import MAX_SALE_PRICE
    from agents.supplier_match.tools import MAX_PIECES, MAX_UNIT_PRICE

    at_bounds = Constraints.from_dict({"quantity": MAX_PIECES, "max_moq": MAX_PIECES,
                                       "max_unit_price": MAX_UNIT_PRICE})
    assert (at_bounds.quantity, at_bounds.max_moq, at_bounds.max_unit_price) == (
        10_000_000, 10_000_000, 1_000_000.0)
    assert MAX_UNIT_PRICE == MAX_SALE_PRICE  # no unit cost above the largest sale price taken
    schema = json.loads((Path(__file__).resolve().parents[1] / "evals" / "sets"
                         / "case.schema.json").read_text(encoding="utf-8"))
    bounds = schema["properties"]["constraints"]["properties"]
    assert bounds["quantity"]["maximum"] == bounds["max_moq"]["maximum"] == MAX_PIECES
    assert bounds["max_unit_price"]["maximum"] == MAX_UNIT_PRICE
