"""Lab 2 reference: a supplier-ranking node that replaces ``shortlist``.

Score = weights["visual"] * visual + weights["price"] * price, where
visual = exp((match score - best match score) / 0.1) and price = cheapest qualifying unit price /
this offer's unit price, both at the requested quantity. Every shortlist entry carries a claim
that cites the evidence of its price.
"""

from __future__ import annotations

import math
from typing import Any

from agents.evidence import cite
from agents.shortlist.grounding import ground
from agents.supplier_match.tools import Constraints, unit_price_at, violations
from data.catalog.schema import Listing, Supplier

WEIGHTS = {"visual": 0.6, "price": 0.4}
VISUAL_TEMPERATURE = 0.1


def qualifies(listing: Listing, supplier: Supplier, constraints: Constraints) -> bool:
    """True when the offer meets every hard constraint of the request."""
    return not violations(listing, supplier, constraints)


def unit_price(listing: Listing, quantity: int | None) -> float | None:
    """Unit price for ``quantity`` pieces (the listing's price tiers), None when unknown."""
    return unit_price_at(listing, quantity)


def score(match: float, best_match: float, price: float | None, cheapest: float | None,
          weights: dict[str, float]) -> dict[str, float]:
    """Per-criterion scores in 0..1 and their weighted total."""
    visual = math.exp(min(0.0, match - best_match) / VISUAL_TEMPERATURE)
    price_score = cheapest / price if price and cheapest else 0.0
    total = weights.get("visual", 0.0) * visual + weights.get("price", 0.0) * price_score
    return {"visual": round(visual, 4), "price": round(price_score, 4), "total": round(total, 6)}


def offer_claim(rank: int, listing: Listing, supplier: Supplier, price: float | None,
                quantity: int | None, evidence: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A claim stating the offer's unit price, citing the evidence that holds every number."""
    cited = [cite(evidence, "suppliers.csv", supplier.supplier_id, "name", supplier.name)]
    if price is None:
        text = f"{supplier.name}: unit price unknown for listing {listing.listing_id}"
    else:
        tiers = listing.attributes.get("price_tiers") or []
        inputs = [cite(evidence, "listings.csv", listing.listing_id, "price_tiers", tiers)] \
            if tiers else [cite(evidence, "listings.csv", listing.listing_id, "price_max",
                                listing.price_max)]
        cited.append(cite(evidence, "derived", listing.listing_id, "unit_price_at_quantity",
                          price, inputs=inputs, quantity=quantity))
        text = (f"{supplier.name} offers listing {listing.listing_id} at {price} "
                f"{listing.currency or ''} per piece at the requested quantity").replace("  ", " ")
    return {"id": f"lab-c{rank}-price", "about": f"shortlist[{rank - 1}]", "text": text,
            "evidence": cited}


def ranking_node(state: dict[str, Any], runtime: Any) -> dict[str, Any]:
    services = runtime.context
    catalog = services.catalog
    constraints = Constraints.from_dict(state.get("constraints"))
    weights = {**WEIGHTS, **(state.get("weights") or {})}
    evidence: dict[str, dict[str, Any]] = dict(state.get("evidence") or {})

    offers = []
    for candidate in state.get("candidates") or []:
        listing = catalog.listings[candidate["listing_id"]]
        supplier = catalog.suppliers[candidate["supplier_id"]]
        if qualifies(listing, supplier, constraints):
            offers.append((candidate, listing, supplier,
                           unit_price(listing, constraints.quantity)))
    prices = [price for *_, price in offers if price is not None]
    cheapest = min(prices) if prices else None
    best_match = max((candidate["match_score"] for candidate, *_ in offers), default=0.0)

    scored = []
    for candidate, listing, supplier, price in offers:
        scores = score(candidate["match_score"], best_match, price, cheapest, weights)
        scored.append((scores, candidate, listing, supplier, price))
    scored.sort(key=lambda item: (-item[0]["total"],
                                  item[4] if item[4] is not None else math.inf,
                                  item[2].listing_id))

    shortlist, claims = [], []
    size = state.get("top_k") or services.shortlist_size
    for rank, (scores, candidate, listing, supplier, price) in enumerate(scored[:size], 1):
        claim = offer_claim(rank, listing, supplier, price, constraints.quantity, evidence)
        claims.append(claim)
        shortlist.append({
            "rank": rank, "supplier": supplier.as_record(), "product_id": listing.product_id,
            "listing": {"listing_id": listing.listing_id, "title": listing.title},
            "is_source": candidate.get("is_source", False),
            "similarity": candidate["similarity"], "match_score": candidate["match_score"],
            "price": {"unit_price_at_quantity": price, "quantity": constraints.quantity,
                      "currency": listing.currency},
            "moq": listing.moq, "scores": scores, "total": scores["total"],
            "claims": [claim["id"]],
        })
    kept, grounding = ground(claims, evidence)
    result = {
        "request": {"market": state.get("market"), "image": state.get("image_name"),
                    "constraints": state.get("constraints") or {}},
        "product": state.get("product") or {},
        "shortlist": shortlist,
        "products": state.get("products") or [],
        "excluded": state.get("excluded") or [],
        "market": state.get("market_analysis") or {},
        "compliance": state.get("compliance") or {},
        "claims": kept,
        "evidence": evidence,
        "grounding": grounding,
        "warnings": list(state.get("warnings") or []),
    }
    return {"result": result, "evidence": evidence}
