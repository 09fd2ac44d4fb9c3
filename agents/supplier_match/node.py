"""Supplier match: image search -> listings grouped into products (with the likely source of each
product named) -> one candidate per (supplier, product) -> hard constraints applied."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agents.context import Services
from agents.evidence import cite
from agents.state import State
from agents.supplier_match.grouping import group_keys
from agents.supplier_match.source import name_source
from agents.supplier_match.tools import Constraints, violations
from retrieval.search import SEARCH_K, search_images

RANKED_PRODUCTS = 10  # product groups reported in the result's ``products`` ranking
MAX_PRODUCTS = 4  # best product groups whose suppliers become shortlist candidates


def _match_method(services: Services) -> str:
    method = f"best cosine similarity of {services.image_embedder.name} descriptors over the " \
             "product's listings"
    if services.reranker is not None:
        method += f", plus the {services.reranker.name} bonus for the first re-ranked hits"
    return method


def supplier_match_node(state: State, runtime: Runtime[Services]) -> dict[str, Any]:
    services = runtime.context
    catalog = services.catalog
    constraints = Constraints.from_dict(state.get("constraints"))
    vector = state["query_vector"]
    search_filter = constraints.search_filter()
    if search_filter.is_empty and state.get("image_hits") is not None:
        hits = state["image_hits"]  # intake's unfiltered, re-ranked search
    else:
        hits = search_images(services.index, vector, SEARCH_K, search_filter, services.reranker,
                             state.get("query_image"), services.load_catalog_image,
                             embedder=services.image_embedder,
                             view_vectors=state.get("query_view_vectors"),
                             photos_of=services.photos_of)
        if not hits and state.get("image_hits"):
            # no listing of the catalog passes the filter: the products the photo matches are
            # still grouped, so that their offers are listed under excluded with the reasons
            # each fails, instead of an empty answer that says nothing
            hits = state["image_hits"]

    # group listings into products (see grouping.py): product_id, else same-picture copies
    same_picture = None
    if services.reranker is not None and hasattr(services.reranker, "same_picture"):
        def same_picture(first: str, second: str) -> bool:
            return services.reranker.same_picture(first, second, services.load_catalog_image)
    keys = group_keys(hits, catalog, same_picture)
    product_scores: dict[str, float] = {}
    found_members: dict[str, list[str]] = {}
    for hit in hits:
        if hit.listing_id not in keys:
            continue
        key = keys[hit.listing_id]
        product_scores[key] = max(product_scores.get(key, -1.0), hit.score)
        found_members.setdefault(key, []).append(hit.listing_id)
    ranked = sorted(product_scores, key=lambda key: (-product_scores[key], key))[:RANKED_PRODUCTS]

    member_ids: dict[str, list[str]] = {}
    products_out = []
    for key in ranked:
        if key.startswith("listing:"):
            member_ids[key] = sorted(found_members[key])
        else:
            member_ids[key] = sorted(row.listing_id for row in catalog.listings_of_product(key))
        members = [catalog.listings[lid] for lid in member_ids[key]]
        products_out.append({
            "product_id": None if key.startswith("listing:") else key,
            "score": round(product_scores[key], 4),
            "listing_ids": member_ids[key],
            "supplier_ids": sorted({row.supplier_id for row in members}),
            "source": name_source(members, catalog),
        })
    source_of = {key: entry["source"]["supplier_id"] for key, entry in zip(ranked, products_out)}
    products = ranked[:MAX_PRODUCTS]
    scores = services.index.listing_scores(vector, {lid for key in products
                                                    for lid in member_ids[key]})

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
            # the visual match belongs to the product, not to whichever supplier's copy of its
            # photos matched best: all listings of a product share its best (re-ranked) score,
            # so suppliers of one product are told apart by price, MOQ, service and kind
            match_score = round(product_scores[key], 4)
            candidate = {
                "supplier_id": supplier.supplier_id,
                "product_id": listing.product_id,
                "product_rank": product_rank,
                "product_key": key,
                "is_source": source_of.get(key) == supplier.supplier_id,
                "listing_id": listing_id,
                "matched_image": hit.image,
                "similarity": similarity,
                "similarity_evidence": cite(evidence, "image_search", listing_id, "similarity",
                                            similarity, image=hit.image,
                                            embedder=services.image_embedder.name),
                "match_score": match_score,
                "match_evidence": cite(evidence, "image_search", str(key), "match_score",
                                       match_score, method=_match_method(services)),
            }
            reasons = violations(listing, supplier, constraints)
            if reasons:
                excluded.append({**candidate, "reasons": reasons})
            else:
                candidates.append(candidate)
    return {"candidates": candidates, "excluded": excluded, "products": products_out,
            "evidence": evidence}
