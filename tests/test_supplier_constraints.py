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
    with pytest.raises(ValueError, match="negative"):
        Constraints.from_dict({"max_unit_price": -1})
    with pytest.raises(ValueError, match="min_margin_pct: must be at most 100"):
        Constraints.from_dict({"min_margin_pct": 120})
    with pytest.raises(ValueError, match="min_margin_pct: expected a number"):
        Constraints.from_dict({"min_margin_pct": "nan"})  # would switch the constraint off
    assert Constraints.from_dict({"min_margin_pct": "25"}).min_margin_pct == 25.0
