"""Lab 2, your supplier-ranking node. Read labs/lab2_ranking/README.md first.

The node replaces the project's ``shortlist`` node: ``build_graph(nodes={"shortlist":
ranking_node})``. It receives the graph state (``candidates`` from supplier_match: one offer per
supplier and product, already filtered by the hard constraints) and returns
``{"result": ..., "evidence": ...}``. The plumbing below is written; the four functions marked
TODO are yours. Try it with ``python labs/lab2_ranking/run_node.py``, check it with
``sourcing lab check 2``.
"""

from __future__ import annotations

import math
from typing import Any

from agents.evidence import cite  # noqa: F401  (for your offer_claim)
from agents.shortlist.grounding import ground
from agents.supplier_match.tools import (  # noqa: F401  (helpers for your TODOs)
    Constraints,
    unit_price_at,
    violations,
)
from data.catalog.schema import Listing, Supplier

WEIGHTS = {"visual": 0.6, "price": 0.4}
VISUAL_TEMPERATURE = 0.1


def qualifies(listing: Listing, supplier: Supplier, constraints: Constraints) -> bool:
    """True when the offer meets every hard constraint of the request."""
    # TODO (README step 3): True when the offer meets every hard constraint (max_moq,
    # max_unit_price at the quantity, supplier_kind, capabilities, min_on_time_rate).
    # Hint: agents/supplier_match/tools.py has a helper that lists the violations.
    raise NotImplementedError("TODO (README step 3): qualifies() is not written yet")


def unit_price(listing: Listing, quantity: int | None) -> float | None:
    """Unit price for ``quantity`` pieces (the listing's price tiers), None when unknown."""
    # TODO (README step 3): the price tier that applies to ``quantity`` pieces
    # (listing.attributes["price_tiers"]: [{"min_qty": .., "unit_price": ..}]), else the
    # listing's price_max, else None. Hint: agents/supplier_match/tools.py.
    raise NotImplementedError("TODO (README step 3): unit_price() is not written yet")


def score(match: float, best_match: float, price: float | None, cheapest: float | None,
          weights: dict[str, float]) -> dict[str, float]:
    """Per-criterion scores in 0..1 and their weighted total."""
    # TODO (README step 4): visual = exp((match - best_match) / VISUAL_TEMPERATURE),
    # price = cheapest / price (0 when the price is unknown),
    # total = weights["visual"] * visual + weights["price"] * price.
    # Return {"visual": .., "price": .., "total": ..}.
    raise NotImplementedError("TODO (README step 4): score() is not written yet")


def offer_claim(rank: int, listing: Listing, supplier: Supplier, price: float | None,
                quantity: int | None, evidence: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A claim stating the offer's unit price, citing the evidence that holds every number."""
    # TODO (README step 5): a claim {"id", "about", "text", "evidence"} whose text states the
    # unit price, and whose "evidence" lists ids made with agents.evidence.cite(...) that hold
    # every number in the text (the supplier's name, the price). A derived value cites
    # source "derived" with inputs=[ids of the records it comes from].
    raise NotImplementedError("TODO (README step 5): offer_claim() is not written yet")


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
