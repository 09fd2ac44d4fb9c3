"""Supplier match: image search -> listings grouped into products -> one candidate per
(supplier, product) with its supplier profile -> hard constraints applied."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agents.context import Services
from agents.evidence import cite
from agents.state import State
from agents.supplier_match.tools import Constraints, violations

SEARCH_K = 40  # listings fetched by image search
MAX_PRODUCTS = 4  # products (groups of listings) kept as candidates


def supplier_match_node(state: State, runtime: Runtime[Services]) -> dict[str, Any]:
    services = runtime.context
    catalog = services.catalog
    constraints = Constraints.from_dict(state.get("constraints"))
    vector = state["query_vector"]
    hits = services.index.search(vector, k=SEARCH_K)

    # group listings into products: listings sharing product_id are the same product
    product_scores: dict[str, float] = {}
    for hit in hits:
        listing = catalog.listings.get(hit.listing_id)
        if listing is None:
            continue
        key = listing.product_id or f"listing:{listing.listing_id}"
        product_scores[key] = max(product_scores.get(key, -1.0), hit.score)
    products = sorted(product_scores, key=lambda key: -product_scores[key])[:MAX_PRODUCTS]

    member_ids: dict[str, list[str]] = {}
    for key in products:
        if key.startswith("listing:"):
            member_ids[key] = [key.split(":", 1)[1]]
        else:
            member_ids[key] = sorted(row.listing_id for row in catalog.listings_of_product(key))
    scores = services.index.listing_scores(vector, {lid for ids in member_ids.values()
                                                    for lid in ids})

    evidence: dict[str, dict[str, Any]] = {}
    candidates, excluded = [], []
    for product_rank, key in enumerate(products, start=1):
        for listing_id in member_ids[key]:
            listing = catalog.listings[listing_id]
            supplier = catalog.suppliers[listing.supplier_id]
            hit = scores.get(listing_id)
            if hit is None:
                continue
            similarity = round(hit.score, 4)
            candidate = {
                "supplier_id": supplier.supplier_id,
                "product_id": listing.product_id,
                "product_rank": product_rank,
                "listing_id": listing_id,
                "matched_image": hit.image,
                "similarity": similarity,
                "similarity_evidence": cite(evidence, "image_search", listing_id, "similarity",
                                            similarity, image=hit.image,
                                            embedder=services.image_embedder.name),
            }
            reasons = violations(listing, supplier, constraints)
            if reasons:
                excluded.append({**candidate, "reasons": reasons})
            else:
                candidates.append(candidate)
    return {"candidates": candidates, "excluded": excluded, "evidence": evidence}
