"""Shortlist: join supplier candidates, market analysis and compliance; score and rank the
candidates; write claims that cite evidence; keep only the claims the grounding check supports."""

from __future__ import annotations

import math
from typing import Any

from langgraph.runtime import Runtime

from agents.compliance.tools import certificate_gaps, gap_summary
from agents.context import Services
from agents.evidence import cite
from agents.shortlist.grounding import ground
from agents.state import State
from agents.supplier_match.tools import Constraints, unit_price_at
from data.catalog.schema import Listing, Supplier

# Default criterion weights (sum 1). A criterion whose facts are unknown scores 0: no credit is
# given for what the catalog does not state, and the candidate lists it under ``unknown``.
DEFAULT_WEIGHTS = {
    "visual": 0.40,
    "price": 0.15,
    "moq": 0.10,
    "responsiveness": 0.06,
    "reliability": 0.09,
    "source": 0.15,
    "compliance": 0.05,
}
# visual score = exp((similarity - best similarity in the run) / VISUAL_TEMPERATURE): the closest
# match scores 1 and a candidate 0.1 behind scores about 0.37, so a clearly better photo match
# outweighs small differences in price or service (0.1 was chosen on the demo eval set, see README)
VISUAL_TEMPERATURE = 0.1
REFERENCE_QUANTITY = 100  # pieces; MOQ fit is judged against it when the seller names none
RESPONSE_HOURS_SCALE = 24.0  # a reply within 0 h scores 1, after 24 h or more scores 0


def _criteria(listing: Listing, supplier: Supplier, similarity: float, best_similarity: float,
              cheapest: float | None, quantity: int | None, gaps: list[dict[str, Any]],
              is_source: bool) -> dict[str, float | None]:
    price = unit_price_at(listing, quantity)
    visual = math.exp(min(0.0, similarity - best_similarity) / VISUAL_TEMPERATURE)
    scores: dict[str, float | None] = {"visual": round(visual, 4)}
    scores["price"] = round(cheapest / price, 4) if price and cheapest else None
    if listing.moq:
        scores["moq"] = round(min(1.0, (quantity or REFERENCE_QUANTITY) / listing.moq), 4)
    else:
        scores["moq"] = None
    parts = []
    if supplier.response_rate is not None:
        parts.append(supplier.response_rate)
    if supplier.response_hours is not None:
        parts.append(max(0.0, 1.0 - supplier.response_hours / RESPONSE_HOURS_SCALE))
    scores["responsiveness"] = round(sum(parts) / len(parts), 4) if parts else None
    rates = [rate for rate in (supplier.on_time_rate, supplier.dispatch_48h_rate,
                               supplier.repurchase_rate) if rate is not None]
    scores["reliability"] = round(sum(rates) / len(rates), 4) if rates else None
    # the maker over re-sellers: the named source of its product group 1, another factory 0.5
    if is_source:
        scores["source"] = 1.0
    else:
        scores["source"] = None if supplier.kind is None else 0.5 * (supplier.kind == "factory")
    if gaps:
        scores["compliance"] = round(sum(g["status"] == "covered" for g in gaps) / len(gaps), 4)
    else:
        scores["compliance"] = None
    return scores


def _fmt(value: Any) -> str:
    return str(value)


def _candidate_claims(rank: int, listing: Listing, supplier: Supplier, candidate: dict[str, Any],
                      evidence: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    sid, lid = supplier.supplier_id, listing.listing_id
    claims = []

    def claim(key: str, text: str, cited: list[str]) -> None:
        claims.append({"id": f"c{rank}-{key}", "about": f"shortlist[{rank - 1}]", "text": text,
                       "evidence": cited})

    kind = {"factory": "factory", "trading_company": "trading company"}.get(supplier.kind or "")
    place = ", ".join(filter(None, [supplier.city, supplier.province, supplier.country]))
    cited = [cite(evidence, "suppliers.csv", sid, "name", supplier.name)]
    if kind:
        cited.append(cite(evidence, "suppliers.csv", sid, "kind", supplier.kind))
    for field in ("city", "province", "country"):
        if getattr(supplier, field):
            cited.append(cite(evidence, "suppliers.csv", sid, field, getattr(supplier, field)))
    claim("profile", f"{supplier.name} is a {kind or 'supplier of unknown kind'}"
          + (f" in {place}" if place else " (location unknown)"), cited)

    claim("similarity", f"Photo similarity to the query: {_fmt(candidate['similarity'])}",
          [candidate["similarity_evidence"]])

    terms, cited = [], []
    if listing.price_min is not None and listing.price_max is not None:
        terms.append(f"unit price {_fmt(listing.price_min)} to {_fmt(listing.price_max)} "
                     f"{listing.currency or ''}".rstrip())
        cited += [cite(evidence, "listings.csv", lid, "price_min", listing.price_min),
                  cite(evidence, "listings.csv", lid, "price_max", listing.price_max)]
    else:
        terms.append("unit price unknown")
    if listing.moq is not None:
        terms.append(f"MOQ {_fmt(listing.moq)} pieces")
        cited.append(cite(evidence, "listings.csv", lid, "moq", listing.moq))
    else:
        terms.append("MOQ unknown")
    if listing.lead_time_days is not None:
        terms.append(f"lead time {_fmt(listing.lead_time_days)} days")
        cited.append(cite(evidence, "listings.csv", lid, "lead_time_days", listing.lead_time_days))
    cited.append(cite(evidence, "listings.csv", lid, "title", listing.title))
    claim("terms", f"Listing {lid}: " + ", ".join(terms), cited)

    service, cited = [], []
    for field, label in (("response_rate", "response rate"), ("response_hours", "replies within"),
                         ("on_time_rate", "on-time delivery rate")):
        value = getattr(supplier, field)
        if value is None:
            service.append(f"{label} unknown")
            continue
        service.append(f"{label} {_fmt(value)}" + (" h" if field == "response_hours" else ""))
        cited.append(cite(evidence, "suppliers.csv", sid, field, value))
    if cited:
        claim("service", "Service record: " + ", ".join(service), cited)

    if supplier.certifications:
        claim("certificates", "Certificates on file: " + ", ".join(supplier.certifications),
              [cite(evidence, "suppliers.csv", sid, "certifications",
                    list(supplier.certifications))])
    return claims


def _market_claims(market: dict[str, Any]) -> list[dict[str, Any]]:
    band = market.get("price_band") or {}
    category = market.get("category") or {}
    if not market.get("available") or not band.get("n"):
        return []
    cited = list(band.get("evidence") or []) + list(category.get("evidence") or [])
    text = (f"{market['market']} marketplace category '{category.get('name')}': median price "
            f"{_fmt(band['median'])} {band.get('currency', '')}, quartiles {_fmt(band['p25'])} to "
            f"{_fmt(band['p75'])}, over {_fmt(band['n'])} listings")
    return [{"id": "m-price-band", "about": "market", "text": text, "evidence": cited}]


def _compliance_claims(compliance: dict[str, Any]) -> list[dict[str, Any]]:
    claims = []
    for number, requirement in enumerate(compliance.get("requirements") or [], start=1):
        claims.append({
            "id": f"r{number}", "about": f"compliance.requirements[{number - 1}]",
            "text": f"{compliance.get('market')}: {requirement['title']} "
                    f"({requirement['legal_act']})",
            "evidence": list(requirement.get("evidence") or []),
        })
    return claims


def shortlist_node(state: State, runtime: Runtime[Services]) -> dict[str, Any]:
    services = runtime.context
    catalog = services.catalog
    constraints = Constraints.from_dict(state.get("constraints"))
    weights = {**DEFAULT_WEIGHTS, **(state.get("weights") or {})}
    evidence: dict[str, dict[str, Any]] = dict(state.get("evidence") or {})
    compliance = state.get("compliance") or {}
    requirements = compliance.get("requirements") or []
    market = state.get("market_analysis") or {}

    cheapest: dict[str | None, float] = {}
    for candidate in state.get("candidates") or []:
        price = unit_price_at(catalog.listings[candidate["listing_id"]], constraints.quantity)
        if price is not None:
            key = candidate.get("product_key", candidate["product_id"])
            cheapest[key] = min(cheapest.get(key, price), price)

    best_similarity = max((c["match_score"] for c in state.get("candidates") or []), default=0.0)
    scored = []
    for candidate in state.get("candidates") or []:
        listing = catalog.listings[candidate["listing_id"]]
        supplier = catalog.suppliers[candidate["supplier_id"]]
        gaps = certificate_gaps(requirements, supplier.certifications)
        scores = _criteria(listing, supplier, candidate["match_score"], best_similarity,
                           cheapest.get(candidate.get("product_key", candidate["product_id"])),
                           constraints.quantity, gaps,
                           candidate.get("is_source", False))
        total = round(sum(weights[name] * (value or 0.0) for name, value in scores.items()), 4)
        scored.append((total, candidate, listing, supplier, scores, gaps))
    scored.sort(key=lambda item: (-item[0], item[1]["listing_id"]))

    shortlist, claims = [], []
    size = state.get("top_k") or services.shortlist_size
    for rank, (total, candidate, listing, supplier, scores, gaps) in enumerate(scored[:size], 1):
        candidate_claims = _candidate_claims(rank, listing, supplier, candidate, evidence)
        claims.extend(candidate_claims)
        shortlist.append({
            "rank": rank,
            "supplier": supplier.as_record(),
            "product_id": listing.product_id,
            "listing": {"listing_id": listing.listing_id, "title": listing.title,
                        "images": list(listing.images), "category": listing.category,
                        "hs_code": listing.hs_code, "material": listing.material},
            "matched_image": candidate["matched_image"],
            "is_source": candidate.get("is_source", False),
            "similarity": candidate["similarity"],
            "match_score": candidate["match_score"],
            "price": {"min": listing.price_min, "max": listing.price_max,
                      "currency": listing.currency,
                      "tiers": listing.attributes.get("price_tiers") or [],
                      "unit_price_at_quantity": unit_price_at(listing, constraints.quantity),
                      "quantity": constraints.quantity},
            "moq": listing.moq,
            "lead_time_days": listing.lead_time_days,
            "weight_kg": listing.weight_kg,
            "scores": scores,
            "weights": weights,
            "unknown": sorted(name for name, value in scores.items() if value is None),
            "total": total,
            "landed_cost": None,
            "margin": None,
            "compliance": gap_summary(gaps),
            "claims": [item["id"] for item in candidate_claims],
        })
    claims.extend(_market_claims(market))
    claims.extend(_compliance_claims(compliance))
    kept, grounding = ground(claims, evidence)

    product = state.get("product") or {}
    result = {
        "request": {"market": state.get("market"), "image": state.get("image_name"),
                    "image_sha256": product.get("image_sha256"),
                    "constraints": state.get("constraints") or {}},
        "product": {key: value for key, value in product.items()
                    if key not in {"image_sha256"}},
        "shortlist": shortlist,
        "products": state.get("products") or [],
        "excluded": state.get("excluded") or [],
        "market": market,
        "compliance": compliance,
        "claims": kept,
        "evidence": evidence,
        "grounding": grounding,
        "warnings": list(state.get("warnings") or []),
        "meta": {"embedder": services.image_embedder.name, "index_size": len(services.index),
                 "generated_at": services.clock().isoformat(timespec="seconds")},
    }
    return {"result": result, "evidence": evidence}
