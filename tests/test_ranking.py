"""Ranking: weights and hard constraints on the demo catalog, and the criterion helpers."""

from __future__ import annotations

import pytest

from agents.shortlist.node import (
    DEFAULT_WEIGHTS,
    MAX_WEIGHT,
    _shortlist_size,
    cross_border_parts,
    resolve_weights,
)
from agents.supplier_match.tools import Constraints, unit_price_at
from data.catalog.schema import Supplier


def test_default_weights_sum_to_one_and_overrides_are_normalised():
    assert sum(DEFAULT_WEIGHTS.values()) == pytest.approx(1.0)
    weights = resolve_weights({"price": 1.0, "visual": 1.0, "moq": 0, "responsiveness": 0,
                               "reliability": 0, "cross_border": 0, "source": 0,
                               "compliance": 0})
    assert weights["price"] == pytest.approx(0.5) and weights["visual"] == pytest.approx(0.5)
    assert sum(weights.values()) == pytest.approx(1.0)


def test_bad_weights_are_refused_by_name():
    with pytest.raises(ValueError, match="unknown weight.*prize.*known: visual"):
        resolve_weights({"prize": 1})
    with pytest.raises(ValueError, match="weight price: must not be negative"):
        resolve_weights({"price": -1})
    with pytest.raises(ValueError, match="weight price: expected a number"):
        resolve_weights({"price": "high"})


def test_weights_that_cannot_rank_are_refused():
    """All zero leaves nothing to rank by; an infinite or huge weight overflows the sum and
    normalises every weight to 0 or NaN."""
    with pytest.raises(ValueError, match="weights: all are zero"):
        resolve_weights(dict.fromkeys(DEFAULT_WEIGHTS, 0))
    with pytest.raises(ValueError, match="weight visual: must be a finite number"):
        resolve_weights({"visual": float("inf")})
    with pytest.raises(ValueError, match="weight visual: must be a finite number"):
        resolve_weights({"visual": "nan"})
    with pytest.raises(ValueError, match=f"weight visual: must be at most {MAX_WEIGHT:g}"):
        resolve_weights({"visual": 1e308, "price": 1e308})
    weights = resolve_weights({**dict.fromkeys(DEFAULT_WEIGHTS, 0), "visual": MAX_WEIGHT,
                               "price": 1e-9})
    assert weights["visual"] == pytest.approx(1.0) and sum(weights.values()) == pytest.approx(1)


@pytest.mark.parametrize("top_k,size", [(3, 3), (0, 5), (-3, 5), (True, 5), ("4", 5),
                                        (None, 5)])
def test_the_shortlist_size_is_top_k_only_when_positive(top_k, size):
    assert _shortlist_size(top_k, 5) == size


def test_cross_border_readiness_counts_only_stated_facts():
    ready = Supplier("S1", "A", export_markets=("US", "DE"), languages=("English",),
                     capabilities=("dropship",))
    assert cross_border_parts(ready, "US") == {"exports_to_market": True, "english": True,
                                               "dropship": True}
    assert cross_border_parts(ready, "EU")["exports_to_market"] is True  # DE is in the EU
    assert cross_border_parts(Supplier("S2", "B"), "US") == {}


def test_required_capabilities_is_an_alias():
    constraints = Constraints.from_dict({"required_capabilities": ["small_batch"]})
    assert constraints.capabilities == ("small_batch",)


@pytest.fixture(scope="module")
def runner(demo_services):
    from agents.run import SourcingRunner

    return SourcingRunner(demo_services)


def test_small_batch_constraints_and_price_weights_on_the_demo_catalog(runner, demo_cases):
    """max_moq=50 + small_batch keeps only suppliers meeting both; with weights favouring price
    the cheapest qualifying offer of the best-matching product ranks first."""
    case = next(c for c in demo_cases if c.id == "demo-mh03-back")
    constraints = {"max_moq": 50, "capabilities": ["small_batch"]}
    weights = {"visual": 0.3, "price": 0.7, "moq": 0, "responsiveness": 0, "reliability": 0,
               "cross_border": 0, "source": 0, "compliance": 0}
    result = runner.run_file(case.image, "US", constraints=constraints, weights=weights,
                             top_k=10)
    catalog = runner.services.catalog
    shortlist = result["shortlist"]
    assert shortlist, "some supplier meets both constraints"
    for item in shortlist:
        listing = catalog.listings[item["listing"]["listing_id"]]
        supplier = catalog.suppliers[item["supplier"]["supplier_id"]]
        assert listing.moq is not None and listing.moq <= 50
        assert "small_batch" in supplier.capabilities
    excluded = result["excluded"]
    assert excluded and all(row["reasons"] for row in excluded)
    assert any(r.startswith("MOQ ") for row in excluded for r in row["reasons"])

    first = shortlist[0]
    same_product = [item for item in shortlist if item["product_id"] == first["product_id"]]
    prices = [unit_price_at(catalog.listings[item["listing"]["listing_id"]], None)
              for item in same_product]
    assert first["price"]["unit_price_at_quantity"] == min(prices)
    assert first["scores"]["price"] == 1.0
    assert first["product_id"] == result["products"][0]["product_id"]
    assert result["grounding"]["unsupported"] == []


def test_every_cost_and_market_number_is_cited(runner, demo_cases):
    """Each figure of the market section and of each candidate's cost breakdown is the value of
    an evidence record the section cites; no claim is left unsupported."""
    case = next(c for c in demo_cases if c.id == "demo-mh03-back")
    result = runner.run_file(case.image, "US")
    evidence = result["evidence"]
    market = result["market"]
    for section in ("price_band", "demand", "competition"):
        cited = {evidence[eid]["field"]: evidence[eid]["value"]
                 for eid in market[section]["evidence"]}
        for key, value in market[section].items():
            if key in {"evidence", "currency"}:
                continue
            if isinstance(value, dict):
                for bucket, count in value.items():
                    assert cited[f"{key}.{bucket}"] == count
            elif value is not None:
                assert cited[key] == value, (section, key)
    for item in result["shortlist"]:
        cost = item["landed_cost"]
        held = [evidence[eid]["value"] for eid in cost["evidence"]]
        for figure in (cost["unit_price"], cost["freight"]["per_unit"], cost["duty"]["per_unit"],
                       cost["fees"]["referral_per_unit"], cost["fees"]["fulfilment_per_unit"],
                       cost["unit_cost"], cost["quantity"]):
            assert figure in held, figure
        margin = item["margin"]
        assert {margin["per_unit"], margin["pct"], margin["sale_price"]} <= \
            {evidence[eid]["value"] for eid in margin["evidence"]}
        for tier in cost["by_tier"]:
            assert {tier["unit_price"], tier["unit_cost"], tier["margin_per_unit"],
                    tier["margin_pct"]} <= {evidence[eid]["value"] for eid in tier["evidence"]}
        for name, ids in item["score_evidence"].items():
            assert all(eid in evidence for eid in ids), name
    assert result["grounding"]["unsupported"] == []
    assert {"c1-landed", "c1-margin", "c1-duty"} <= {claim["id"] for claim in result["claims"]}
