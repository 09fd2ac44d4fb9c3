"""Landed cost and margin of one candidate, every figure cited.

    landed unit cost = unit price at the quantity
                     + freight per unit   (weight kg x rate USD/kg of the shipping mode)
                     + duty per unit      (unit price x (general rate + additional rates) / 100)
                     + referral fee       (rate x sale price, at least the category minimum)
                     + fulfilment fee     (per unit, by shipping weight)
    margin per unit  = sale price - landed unit cost;  margin % = margin / sale price x 100

The sale price is the seller's own when the request gives one (``sale_price``, cited as a request
record), otherwise the market's median listing price. The shipping mode is the seller's when the
request names one (``shipping_mode``), otherwise chosen by shipment weight. US duty is assessed
on the transaction value (the unit price), not on price plus freight. Not included: customs
brokerage, the merchandise processing and harbour maintenance fees, storage, returns and
advertising. Money is USD (listings in another currency are refused rather than converted at a
guessed rate). Every component is cited; a component whose data is missing leaves
``unit_cost`` ``None`` and names the gap in ``missing``, except additional duties whose table
does not cover the code: the cost is then computed without them and ``complete`` is false.
"""

from __future__ import annotations

import math
from typing import Any

from agents.evidence import cite
from agents.market.trade import (
    COST_CURRENCY,
    HTS_FILE,
    MODES,
    TradeData,
    fulfilment_fee,
    referral_fee,
)
from agents.supplier_match.tools import unit_price_at
from data.catalog.schema import Listing, Supplier

# shipment weight (kg) up to which a mode is chosen when the seller names none
EXPRESS_MAX_KG = 20.0
AIR_MAX_KG = 500.0
MAX_SALE_PRICE = 1_000_000.0  # USD; a larger "price" is a typo, not a product
MARKET_PRICE_BASIS = "market median price"
SELLER_PRICE_BASIS = "the seller's sale price"


def checked_sale_price(value: Any) -> float | None:
    """The seller's sale price (USD) as a float, or ``None``; ``ValueError`` naming the problem
    for anything that is not a finite price above 0 and at most ``MAX_SALE_PRICE``."""
    if value is None:
        return None
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"sale_price: expected a number, got {value!r}") from None
    if not math.isfinite(price) or price <= 0 or price > MAX_SALE_PRICE:
        raise ValueError(f"sale_price: must be above 0 and at most {MAX_SALE_PRICE:,.0f} USD, "
                         f"got {value!r}")
    return price


def checked_shipping_mode(value: Any) -> str | None:
    """The seller's shipping mode, or ``None`` (chosen by weight); ``ValueError`` otherwise."""
    if value is None:
        return None
    if value not in MODES:
        raise ValueError(f"shipping_mode: expected one of {', '.join(MODES)}, "
                         f"got {value!r}")
    return str(value)


def choose_mode(shipment_kg: float) -> str:
    """express up to 20 kg, air up to 500 kg, sea above."""
    if shipment_kg <= EXPRESS_MAX_KG:
        return "express"
    return "air" if shipment_kg <= AIR_MAX_KG else "sea"


def _r(value: float, digits: int = 2) -> float:
    return round(value + 0.0, digits)


class _Ledger:
    """Derived evidence records of one candidate's cost breakdown."""

    def __init__(self, evidence: dict[str, dict[str, Any]], key: str) -> None:
        self.evidence = evidence
        self.key = key

    def derive(self, field: str, value: Any, inputs: list[str], method: str) -> str:
        return cite(self.evidence, "derived", self.key, field, value, inputs=list(inputs),
                    method=method)


def tier_rows(listing: Listing) -> list[dict[str, Any]]:
    return sorted(listing.attributes.get("price_tiers") or [], key=lambda t: t["min_qty"])


def landed_cost(trade: TradeData | None, evidence: dict[str, dict[str, Any]], *, market: str,
                listing: Listing, supplier: Supplier, hs_code: str | None,
                quantity: int | None, product_weight_kg: float | None = None,
                product_weight_id: str | None = None, sale_price: float | None = None,
                sale_price_id: str | None = None,
                sale_price_basis: str = MARKET_PRICE_BASIS, mode: str | None = None,
                mode_id: str | None = None, no_sale_price: str | None = None
                ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(landed_cost, margin)`` for one candidate; adds its evidence records in place.

    ``sale_price_id`` cites the sale price (the market's median, or the seller's price from the
    request, with ``sale_price_basis`` saying which); ``mode`` is the seller's shipping mode,
    cited by ``mode_id``, or ``None`` to choose one by shipment weight. ``no_sale_price`` says
    why no sale price is given, when the reason is not that the market has no data."""
    mode = checked_shipping_mode(mode)
    lid = listing.listing_id
    missing: list[str] = []
    cited: list[str] = []
    if listing.currency and listing.currency != COST_CURRENCY:
        return ({"unit_cost": None, "missing": [f"listing price in {listing.currency}: no "
                                                "exchange rate is bundled"], "evidence": []},
                None)
    qty = quantity or listing.moq
    basis = "requested quantity" if quantity else "the listing's MOQ"
    ledger = _Ledger(evidence, f"landed_cost:{lid}:{market}:{qty}")

    # unit price at the quantity, from the cited tier
    tiers = tier_rows(listing)
    price = unit_price_at(listing, qty)
    price_id = None
    if price is not None and tiers:
        tier = next((t for t in reversed(tiers) if qty is not None and qty >= t["min_qty"]),
                    tiers[0])
        price_id = cite(evidence, "listings.csv", lid, f"price_tiers[min_qty={tier['min_qty']}]"
                        ".unit_price", float(tier["unit_price"]), min_qty=tier["min_qty"])
    elif price is not None:
        price_id = cite(evidence, "listings.csv", lid, "price_max", price)
    else:
        missing.append("unit price unknown")
    qty_id = None
    if qty is not None:
        qty_id = (cite(evidence, "request", "constraints", "quantity", qty) if quantity
                  else cite(evidence, "listings.csv", lid, "moq", listing.moq))
        cited.append(qty_id)

    # weight: the listing's, else the product's
    weight, weight_id = listing.weight_kg, None
    if weight is not None:
        weight_id = cite(evidence, "listings.csv", lid, "weight_kg", weight)
    elif product_weight_kg is not None:
        weight, weight_id = product_weight_kg, product_weight_id
    else:
        missing.append("weight unknown: freight and fulfilment fee cannot be computed")

    out: dict[str, Any] = {"currency": COST_CURRENCY, "market": market, "quantity": qty,
                           "quantity_basis": basis, "unit_price": price, "weight_kg": weight}
    if trade is None:
        missing.append("no trade tables loaded")
        out.update(unit_cost=None, complete=False, missing=missing, evidence=[])
        return out, None

    # freight
    origin = supplier.country
    shipment = (weight or 0) * (qty or 0)
    chosen = mode or choose_mode(shipment)
    freight: dict[str, Any] = {"mode": chosen,
                               "mode_basis": "the seller's choice" if mode else "shipment weight",
                               "rate_per_kg": None, "per_unit": None, "by_mode": {}}
    freight_ids: dict[str, str] = {}
    for each in MODES:
        row = trade.freight_rate(origin, market, each)
        if row is None or weight is None:
            continue
        rate = float(row.get("rate_usd_per_kg"))
        rate_id = cite(evidence, "freight_rates.csv", row.record_id, "rate_usd_per_kg", rate,
                       source_url=row.get("source_url"), as_of=row.get("as_of"),
                       basis=row.get("basis"), note=row.get("note"))
        per_unit = _r(weight * rate)
        freight_ids[each] = ledger.derive(f"freight_{each}_per_unit", per_unit,
                                          [weight_id, rate_id],
                                          "weight_kg x rate_usd_per_kg, rounded to cents")
        freight["by_mode"][each] = per_unit
        if each == chosen:
            freight.update(rate_per_kg=rate, per_unit=per_unit)
            cited += [rate_id, freight_ids[each]]
    if weight is not None and freight["per_unit"] is None:
        missing.append(f"no {chosen} freight rate for {origin or 'unknown origin'} -> {market}")
    if shipment and qty_id and weight_id:
        freight["shipment_kg"] = _r(shipment, 3)
        rule = ("the mode named by the seller" if mode else
                f"express up to {EXPRESS_MAX_KG:g} kg, air up to {AIR_MAX_KG:g} kg, sea above")
        freight["mode_evidence"] = ledger.derive(
            "shipment_kg", freight["shipment_kg"], [qty_id, weight_id],
            f"quantity x weight_kg; mode {chosen}: {rule}")
    if mode and mode_id:
        freight["mode_evidence"] = mode_id
    out["freight"] = freight

    # duty
    duty: dict[str, Any] = {"hs_code": hs_code, "general_rate_pct": None, "additional": [],
                            "rate_pct": None, "per_unit": None}
    general = trade.general_duty(market, hs_code) if hs_code else None
    rate_ids: list[str] = []
    if not hs_code:
        missing.append("no HS code: duty unknown")
    elif general is None:
        missing.append(f"no tariff data for {market}: duty unknown (not guessed)")
    elif general["rate_pct"] is None:
        missing.append(f"no ad-valorem general rate under {hs_code} in the US HTS 2024")
    else:
        general_id = cite(evidence, HTS_FILE, general["hts_number"], "general_rate_pct",
                          general["rate_pct"], general=general["general"],
                          lines=[f"{line.hts_number}: {line.general}"
                                 for line in general["lines"]],
                          method="highest ad-valorem general rate among the lines under the "
                                 "6-digit code (an upper bound where lines differ)")
        duty.update(general_rate_pct=general["rate_pct"], hts_number=general["hts_number"])
        rate_ids.append(general_id)
        extra = trade.additional_duties(market, origin, hs_code)
        for row in extra:
            rate = float(row.get("rate_pct"))
            rate_ids.append(cite(evidence, "us_additional_duties.csv", row.record_id,
                                 "rate_pct", rate, measure=row.get("measure"),
                                 heading=row.get("chapter99_heading"),
                                 legal_source=row.get("legal_source"),
                                 source_url=row.get("source_url"),
                                 effective_date=row.get("effective_date"),
                                 as_of=row.get("as_of")))
            rate_ids.append(cite(evidence, "us_additional_duties.csv", row.record_id, "measure",
                                 row.get("measure")))
            duty["additional"].append({"measure": row.get("measure"), "rate_pct": rate,
                                       "heading": row.get("chapter99_heading"),
                                       "legal_source": row.get("legal_source"),
                                       "effective_date": row.get("effective_date")})
        if not extra:
            duty["additional_note"] = (
                f"the bundled additional-duty table holds no row for {hs_code} from "
                f"{origin or 'an unknown origin'}; check Section 301 and later measures")
        total_rate = _r(general["rate_pct"] + sum(a["rate_pct"] for a in duty["additional"]), 4)
        duty["rate_pct"] = total_rate
        rate_total_id = ledger.derive("duty_rate_pct", total_rate, rate_ids,
                                      "general rate + additional rates")
        if price is not None:
            duty["per_unit"] = _r(price * total_rate / 100)
            duty_id = ledger.derive("duty_per_unit", duty["per_unit"], [price_id, rate_total_id],
                                    "unit_price x duty_rate_pct / 100, rounded to cents")
            cited += [rate_total_id, duty_id]
    out["duty"] = duty

    # marketplace fees
    fees: dict[str, Any] = {"referral_pct": None, "referral_per_unit": None,
                            "fulfilment_per_unit": None}
    fee_ids: list[str] = []
    referral_rows = trade.referral_rows(market, hs_code) if hs_code else []
    if sale_price is None:
        missing.append(no_sale_price or f"no marketplace data for {market}: sale price, "
                                        "referral fee and margin unknown")
    elif not referral_rows:
        missing.append(f"no referral-fee category for {hs_code or 'an unknown HS code'} in "
                       f"{market}")
    else:
        fee, used = referral_fee(referral_rows, sale_price)
        used_ids = [cite(evidence, "marketplace_referral_fees.csv", row.record_id,
                         "referral_pct", float(row.get("referral_pct")),
                         minimum_fee_usd=float(row.get("minimum_fee_usd") or 0),
                         fee_category=row.get("fee_category"), applies_to=row.get("applies_to"),
                         source_url=row.get("source_url"), as_of=row.get("as_of"))
                    for row in used]
        fees.update(referral_pct=float(used[-1].get("referral_pct")) if used else None,
                    category=referral_rows[0].get("fee_category"),
                    referral_per_unit=_r(fee))
        fee_ids.append(ledger.derive("referral_per_unit", fees["referral_per_unit"],
                                     [*used_ids, sale_price_id],
                                     "referral_pct x sale price (per band), at least the "
                                     "category minimum, rounded to cents"))
    if weight is not None:
        apparel = bool(hs_code) and str(hs_code)[:2] in {"61", "62"}
        row = trade.fulfilment_row(market, weight, apparel)
        if row is None:
            missing.append(f"no fulfilment fee for {weight} kg in {market}")
        else:
            fees["fulfilment_per_unit"] = _r(fulfilment_fee(row, weight))
            row_id = cite(evidence, "marketplace_fulfilment_fees.csv", row.record_id, "fee_usd",
                          float(row.get("fee_usd")), size_tier=row.get("size_tier"),
                          apparel=row.get("apparel"),
                          extra_per_half_lb_usd=float(row.get("extra_per_half_lb_usd") or 0),
                          source_url=row.get("source_url"), as_of=row.get("as_of"))
            fee_ids.append(ledger.derive("fulfilment_per_unit", fees["fulfilment_per_unit"],
                                         [row_id, weight_id],
                                         "fee of the weight band (plus the per half-lb step "
                                         "above 3 lb), large standard size assumed"))
    out["fees"] = fees
    cited += fee_ids

    parts = [price, freight["per_unit"], duty["per_unit"], fees["referral_per_unit"],
             fees["fulfilment_per_unit"]]
    if any(part is None for part in parts) or missing:
        out.update(unit_cost=None, complete=False, missing=missing,
                   evidence=[eid for eid in [price_id, *cited] if eid])
        return out, None
    unit_cost = _r(sum(parts))
    part_ids = [price_id, freight_ids[chosen], *[e for e in cited if e.endswith(
        ("duty_per_unit", "referral_per_unit", "fulfilment_per_unit"))]]
    cost_id = ledger.derive("unit_cost", unit_cost, part_ids,
                            "unit_price + freight + duty + referral fee + fulfilment fee")
    # without a row in the additional-duty table the cost may miss an additional duty
    complete = bool(duty["additional"])
    if not complete:
        missing.append(duty["additional_note"])
    out.update(unit_cost=unit_cost, complete=complete, missing=missing,
               evidence=[price_id, *cited, cost_id])
    out["unit_cost_evidence"] = cost_id

    margin_value = _r(sale_price - unit_cost)
    margin_pct = _r(margin_value / sale_price * 100, 1) if sale_price else None
    margin_id = ledger.derive("margin_per_unit", margin_value, [sale_price_id, cost_id],
                              f"sale price ({sale_price_basis}) - landed unit cost")
    pct_id = ledger.derive("margin_pct", margin_pct, [margin_id, sale_price_id],
                           "margin_per_unit / sale price x 100, 1 decimal")
    margin = {"sale_price": sale_price, "sale_price_basis": sale_price_basis,
              "per_unit": margin_value, "pct": margin_pct, "complete": complete,
              "evidence": [sale_price_id, margin_id, pct_id]}

    # the same breakdown at each of the supplier's price tiers (same mode, fees and rates)
    by_tier = []
    fixed = _r((fees["referral_per_unit"] or 0) + (fees["fulfilment_per_unit"] or 0)
               + (freight["per_unit"] or 0))
    for tier in tiers:
        tier_price = float(tier["unit_price"])
        tier_price_id = cite(evidence, "listings.csv", lid,
                             f"price_tiers[min_qty={tier['min_qty']}].unit_price", tier_price,
                             min_qty=tier["min_qty"])
        tier_key = _Ledger(evidence, f"landed_cost:{lid}:{market}:tier{tier['min_qty']}")
        tier_duty = _r(tier_price * duty["rate_pct"] / 100)
        tier_cost = _r(tier_price + tier_duty + fixed)
        cost_tier_id = tier_key.derive(
            "unit_cost", tier_cost, [tier_price_id, rate_total_id, *fee_ids, freight_ids[chosen]],
            "tier unit_price + duty at duty_rate_pct + the same freight and fees")
        tier_margin = _r(sale_price - tier_cost)
        margin_tier_id = tier_key.derive("margin_per_unit", tier_margin,
                                         [sale_price_id, cost_tier_id],
                                         "sale price - tier landed unit cost")
        by_tier.append({"min_qty": tier["min_qty"], "unit_price": tier_price,
                        "unit_cost": tier_cost, "margin_per_unit": tier_margin,
                        "margin_pct": _r(tier_margin / sale_price * 100, 1),
                        "evidence": [tier_price_id, cost_tier_id, margin_tier_id]})
        pct_tier_id = tier_key.derive("margin_pct", by_tier[-1]["margin_pct"],
                                      [margin_tier_id, sale_price_id],
                                      "margin_per_unit / sale price x 100, 1 decimal")
        by_tier[-1]["evidence"].append(pct_tier_id)
    out["by_tier"] = by_tier
    return out, margin
