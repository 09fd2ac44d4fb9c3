"""Shortlist: join supplier candidates, market analysis and compliance; score and rank the
candidates; write claims that cite evidence; keep only the claims the grounding check supports."""

from __future__ import annotations

import math
from typing import Any

from langgraph.runtime import Runtime

from agents.compliance.tools import certificate_gaps, gap_summary
from agents.context import Services
from agents.evidence import cite, cite_sale_price
from agents.market.trade import COST_CURRENCY
from agents.shortlist.grounding import ground
from agents.shortlist.landed_cost import MARKET_PRICE_BASIS, SELLER_PRICE_BASIS, landed_cost
from agents.state import State
from agents.supplier_match.tools import Constraints, unit_price_at
from data.catalog.schema import Listing, Supplier

# Default criterion weights (sum 1). A criterion whose facts are unknown scores 0: no credit is
# given for what the catalog does not state, and the candidate lists it under ``unknown``.
DEFAULT_WEIGHTS = {
    "visual": 0.40,
    "price": 0.14,
    "moq": 0.09,
    "responsiveness": 0.05,
    "reliability": 0.08,
    "cross_border": 0.05,
    "source": 0.14,
    "compliance": 0.05,
}
# the largest weight a request may give one criterion: weights are relative (normalised to sum
# 1), so this leaves a ratio of any size in reach while the sum of eight stays finite
MAX_WEIGHT = 1000.0
EU_MEMBERS = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO "
                       "SE SI SK".split())


def resolve_weights(requested: dict[str, float] | None) -> dict[str, float]:
    """The default weights overridden by the request, normalised to sum 1. An unknown criterion,
    a weight that is negative, not finite or over ``MAX_WEIGHT``, or weights that are all zero
    are refused (``ValueError`` naming the problem): each would leave the ranking undefined."""
    requested = dict(requested or {})
    unknown = set(requested) - set(DEFAULT_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown weight(s): {', '.join(sorted(unknown))}; known: "
                         f"{', '.join(DEFAULT_WEIGHTS)}")
    weights = {**DEFAULT_WEIGHTS}
    for name, value in requested.items():
        try:
            weights[name] = float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"weight {name}: expected a number, got {value!r}") from exc
        if not math.isfinite(weights[name]):
            raise ValueError(f"weight {name}: must be a finite number, got {value!r}")
        if weights[name] < 0:
            raise ValueError(f"weight {name}: must not be negative, got {value!r}")
        if weights[name] > MAX_WEIGHT:
            raise ValueError(f"weight {name}: must be at most {MAX_WEIGHT:g}, got {value!r} "
                             "(weights are relative: only their ratios matter)")
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("weights: all are zero; at least one must be positive")
    return {name: round(value / total, 6) for name, value in weights.items()}


def cross_border_parts(supplier: Supplier, market: str) -> dict[str, bool]:
    """Cross-border readiness facts the catalog states: exports to the target market, speaks
    English, offers dropshipping. A fact the catalog leaves empty is left out."""
    parts: dict[str, bool] = {}
    if supplier.export_markets:
        targets = EU_MEMBERS if market == "EU" else {market}
        parts["exports_to_market"] = bool(targets & set(supplier.export_markets))
    if supplier.languages:
        parts["english"] = "English" in supplier.languages
    if supplier.capabilities:
        parts["dropship"] = "dropship" in supplier.capabilities
    return parts
# visual score = exp((similarity - best similarity in the run) / VISUAL_TEMPERATURE): the closest
# match scores 1 and a candidate 0.1 behind scores about 0.37, so a clearly better photo match
# outweighs small differences in price or service (0.1 was chosen on the demo eval set, see README)
VISUAL_TEMPERATURE = 0.1
REFERENCE_QUANTITY = 100  # pieces; MOQ fit is judged against it when the seller names none
RESPONSE_HOURS_SCALE = 24.0  # a reply within 0 h scores 1, after 24 h or more scores 0


def _criteria(listing: Listing, supplier: Supplier, similarity: float, best_similarity: float,
              cheapest: float | None, quantity: int | None, gaps: list[dict[str, Any]],
              is_source: bool, market: str = "") -> dict[str, float | None]:
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
    parts_cb = cross_border_parts(supplier, market)
    scores["cross_border"] = round(sum(parts_cb.values()) / len(parts_cb), 4) if parts_cb \
        else None
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


def _score_evidence(listing: Listing, supplier: Supplier, candidate: dict[str, Any],
                    quantity: int | None, evidence: dict[str, dict[str, Any]]
                    ) -> dict[str, list[str]]:
    """The evidence each criterion's score used (cited into ``evidence``)."""
    sid, lid = supplier.supplier_id, listing.listing_id

    def sup(*fields: str) -> list[str]:
        return [cite(evidence, "suppliers.csv", sid, f, _plain(getattr(supplier, f)))
                for f in fields if getattr(supplier, f) not in (None, ())]

    price_ids = []
    tiers = sorted(listing.attributes.get("price_tiers") or [], key=lambda t: t["min_qty"])
    if tiers:
        tier = next((t for t in reversed(tiers) if quantity and quantity >= t["min_qty"]),
                    tiers[0])
        price_ids.append(cite(evidence, "listings.csv", lid,
                              f"price_tiers[min_qty={tier['min_qty']}].unit_price",
                              float(tier["unit_price"]), min_qty=tier["min_qty"]))
    elif listing.price_max is not None:
        price_ids.append(cite(evidence, "listings.csv", lid, "price_max", listing.price_max))
    return {
        "visual": [candidate["match_evidence"]],
        "price": price_ids,
        "moq": [cite(evidence, "listings.csv", lid, "moq", listing.moq)]
        if listing.moq is not None else [],
        "responsiveness": sup("response_rate", "response_hours"),
        "reliability": sup("on_time_rate", "dispatch_48h_rate", "repurchase_rate"),
        "cross_border": sup("export_markets", "languages", "capabilities"),
        "source": sup("kind"),
        "compliance": sup("certifications"),
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _cost_claims(rank: int, cost: dict[str, Any], margin: dict[str, Any] | None,
                 evidence: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Claims stating the landed cost, its parts, the duty and the margin (each cited)."""
    claims: list[dict[str, Any]] = []
    about = f"shortlist[{rank - 1}].landed_cost"
    duty = cost.get("duty") or {}
    if duty.get("rate_pct") is not None:
        parts = [f"{_fmt(duty['general_rate_pct'])} % general rate"]
        parts += [f"{_fmt(a['rate_pct'])} % {a['measure']}" for a in duty["additional"]]
        ids = [eid for eid in cost["evidence"] if eid.endswith(":duty_rate_pct")]
        ids += evidence[ids[0]]["inputs"] if ids else []
        claims.append({"id": f"c{rank}-duty", "about": about,
                       "text": f"Import duty {_fmt(duty['rate_pct'])} %: " + " + ".join(parts),
                       "evidence": ids})
    if cost.get("unit_cost") is None:
        return claims
    freight, fees = cost["freight"], cost["fees"]
    ids = list(cost["evidence"])
    claims.append({
        "id": f"c{rank}-landed", "about": about,
        "text": (f"Landed cost per unit at {_fmt(cost['quantity'])} pieces by {freight['mode']}: "
                 f"{_fmt(cost['unit_cost'])} USD = unit price {_fmt(cost['unit_price'])} + "
                 f"freight {_fmt(freight['per_unit'])} + duty {_fmt(duty['per_unit'])} + "
                 f"referral fee {_fmt(fees['referral_per_unit'])} + fulfilment fee "
                 f"{_fmt(fees['fulfilment_per_unit'])}"),
        "evidence": ids})
    if margin is not None:
        claims.append({
            "id": f"c{rank}-margin", "about": f"shortlist[{rank - 1}].margin",
            "text": (f"Margin at {_PRICE_WORDS.get(margin['sale_price_basis'], 'the price')} "
                     f"{_fmt(margin['sale_price'])} USD: "
                     f"{_fmt(margin['per_unit'])} USD per unit ({_fmt(margin['pct'])} %)"),
            "evidence": list(margin["evidence"])})
    return claims


def _margin_violations(constraints: Constraints, cost: dict[str, Any],
                       margin: dict[str, Any] | None) -> list[str]:
    """Why a candidate fails ``min_margin_pct`` (empty when it passes or none is set); an
    unknown margin fails, naming what is missing."""
    floor = constraints.min_margin_pct
    if floor is None:
        return []
    if margin is None or margin.get("pct") is None:
        missing = "; ".join(cost.get("missing") or []) or "landed cost or sale price unknown"
        return [f"margin unknown ({missing})"]
    if margin["pct"] < floor:
        return [f"margin {_fmt(margin['pct'])} % at {_PRICE_WORDS[margin['sale_price_basis']]} "
                f"{_fmt(margin['sale_price'])} USD < min_margin_pct {_fmt(floor)}"]
    return []


_PRICE_WORDS = {MARKET_PRICE_BASIS: "the market median price",
                SELLER_PRICE_BASIS: "the seller's sale price"}


def _sale_price(state: State, market: dict[str, Any], evidence: dict[str, dict[str, Any]]
                ) -> tuple[float | None, str | None, str, str | None]:
    """The sale price the margin is computed at, its evidence id, its basis and, when there is
    none for a reason other than a market without data, that reason: the seller's (a request
    record) when given, else the market's median when the market agent cited one in the
    currency of the costs (no exchange rate is bundled to convert it)."""
    given = state.get("sale_price")
    if given is not None:
        return float(given), cite_sale_price(evidence, given), SELLER_PRICE_BASIS, None
    band = market.get("price_band") or {}
    median_id = (f"derived:price_band:{market.get('market')}:"
                 f"{(market.get('category') or {}).get('category_id')}:median")
    if market.get("available") and median_id in evidence:
        currency = band.get("currency")
        if currency != COST_CURRENCY:
            return None, None, MARKET_PRICE_BASIS, (
                f"market prices in {currency}, costs in {COST_CURRENCY}: no exchange rate is "
                "bundled, so sale price, referral fee and margin are unknown")
        return band.get("median"), median_id, MARKET_PRICE_BASIS, None
    return None, None, MARKET_PRICE_BASIS, None


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
    claims = [{"id": "m-price-band", "about": "market", "text": text, "evidence": cited}]
    position = market.get("sale_price_position")
    if position:
        claims.append({
            "id": "m-sale-price", "about": "market.sale_price_position",
            "text": (f"The seller's sale price {_fmt(position['sale_price'])} {COST_CURRENCY} "
                     "is above "
                     f"{_fmt(position['listings_cheaper'])} of the {_fmt(position['n'])} listing "
                     f"prices in '{category.get('name')}'"),
            "evidence": list(position["evidence"])})
    return claims


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


UNUSED_GAPS_SHOWN = 4  # landed-cost gaps quoted in the unused sale price warning


def _unused_pricing(state: State, shortlist: list[dict[str, Any]]) -> list[str]:
    """A warning when the seller gave a sale price but no shortlisted candidate got a margin
    (a market without tariff, fee or marketplace data): the request echoes the price, so
    without it nothing tells the seller that the price was not used. The shipping mode is
    named too when no candidate got a landed cost to ship by it."""
    given = state.get("sale_price")
    if given is None or not shortlist or any(item["margin"] for item in shortlist):
        return []
    unused = f"sale_price {_fmt(float(given))} {COST_CURRENCY}"
    mode = state.get("shipping_mode")
    if mode is not None and not any(item["landed_cost"].get("unit_cost") is not None
                                    for item in shortlist):
        unused += f" and shipping_mode {mode}"
    gaps = list(dict.fromkeys(gap for item in shortlist
                              for gap in item["landed_cost"].get("missing") or []))
    shown = "; ".join(gaps[:UNUSED_GAPS_SHOWN]) + ("; ..." if len(gaps) > UNUSED_GAPS_SHOWN
                                                  else "")
    return [f"{unused} not used: no shortlisted candidate has a landed cost in "
            f"{state.get('market') or 'this market'}, so no margin was computed"
            + (f" ({shown})" if shown else "")]


def _shortlist_size(top_k: Any, default: int) -> int:
    """``top_k`` when it is a positive whole number, else the services' default: a zero or
    negative size (which the API and the CLI refuse) would silently give an empty shortlist."""
    if isinstance(top_k, int) and not isinstance(top_k, bool) and top_k > 0:
        return top_k
    return default


def shortlist_node(state: State, runtime: Runtime[Services]) -> dict[str, Any]:
    services = runtime.context
    catalog = services.catalog
    constraints = Constraints.from_dict(state.get("constraints"))
    weights = resolve_weights(state.get("weights"))
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
                           candidate.get("is_source", False), state.get("market") or "")
        total = round(sum(weights[name] * (value or 0.0) for name, value in scores.items()), 4)
        scored.append((total, candidate, listing, supplier, scores, gaps))
    scored.sort(key=lambda item: (-item[0], item[1]["listing_id"]))

    shortlist, claims = [], []
    size = _shortlist_size(state.get("top_k"), services.shortlist_size)
    product = state.get("product") or {}
    sale_price, sale_id, sale_basis, no_sale_price = _sale_price(state, market, evidence)
    mode = state.get("shipping_mode")
    mode_id = (cite(evidence, "request", "pricing", "shipping_mode", mode)
               if mode is not None else None)
    top_hs = (product.get("hs_candidates") or [{}])[0]
    excluded = list(state.get("excluded") or [])
    for total, candidate, listing, supplier, scores, gaps in scored:
        if len(shortlist) >= size:
            break
        hs_code = top_hs.get("code") or listing.hs_code
        cost, margin = landed_cost(
            services.trade, evidence, market=state.get("market") or "", listing=listing,
            supplier=supplier, hs_code=hs_code, quantity=constraints.quantity,
            sale_price=sale_price, sale_price_id=sale_id, sale_price_basis=sale_basis,
            mode=mode, mode_id=mode_id, no_sale_price=no_sale_price)
        reasons = _margin_violations(constraints, cost, margin)
        if reasons:
            excluded.append({**candidate, "reasons": reasons,
                             "evidence": list((margin or {}).get("evidence") or [])})
            continue
        rank = len(shortlist) + 1
        candidate_claims = _candidate_claims(rank, listing, supplier, candidate, evidence)
        score_evidence = _score_evidence(listing, supplier, candidate, constraints.quantity,
                                         evidence)
        cost["hs_code"] = hs_code
        cost["hs_code_basis"] = ("product classification" if top_hs.get("code")
                                 else "the listing's declared code")
        candidate_claims += _cost_claims(rank, cost, margin, evidence)
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
            "score_evidence": score_evidence,
            "weights": weights,
            "unknown": sorted(name for name, value in scores.items() if value is None),
            "total": total,
            "landed_cost": cost,
            "margin": margin,
            "compliance": gap_summary(gaps),
            "claims": [item["id"] for item in candidate_claims],
        })
    claims.extend(_market_claims(market))
    claims.extend(_compliance_claims(compliance))
    kept, grounding = ground(claims, evidence)

    result = {
        "request": {"market": state.get("market"), "image": state.get("image_name"),
                    "image_sha256": product.get("image_sha256"),
                    "constraints": state.get("constraints") or {},
                    **{key: state[key] for key in ("sale_price", "shipping_mode")
                       if state.get(key) is not None}},
        "product": {key: value for key, value in product.items()
                    if key not in {"image_sha256"}},
        "shortlist": shortlist,
        "products": state.get("products") or [],
        "excluded": excluded,
        "market": market,
        "compliance": compliance,
        "claims": kept,
        "evidence": evidence,
        "grounding": grounding,
        "warnings": [*(state.get("warnings") or []), *_unused_pricing(state, shortlist)],
        "meta": {"embedder": services.image_embedder.name, "index_size": len(services.index),
                 "generated_at": services.clock().isoformat(timespec="seconds")},
    }
    return {"result": result, "evidence": evidence}
