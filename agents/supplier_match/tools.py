"""Supplier-match building blocks: group search hits into products, apply hard constraints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from data.catalog.schema import Listing, Supplier
from retrieval.filters import SearchFilter


@dataclass(frozen=True)
class Constraints:
    """Hard filters a seller may set; ``None`` means no limit. Prices in the listing's currency.

    ``min_margin_pct`` (the margin per unit as a percentage of the sale price, see
    ``agents.shortlist.landed_cost``) needs the landed cost, so the shortlist node checks it
    rather than supplier match; an unknown margin fails it, as any unknown value fails."""

    max_moq: int | None = None
    max_unit_price: float | None = None
    quantity: int | None = None
    supplier_kind: str | None = None
    capabilities: tuple[str, ...] = field(default_factory=tuple)
    min_on_time_rate: float | None = None
    min_margin_pct: float | None = None

    def search_filter(self) -> SearchFilter:
        """The part of the constraints the index can apply inside the search. It never drops a
        listing that passes: price is compared with the lowest tier price there, and the exact
        per-quantity checks (``violations``) run on the candidates afterwards."""
        return SearchFilter(supplier_kind=self.supplier_kind, max_moq=self.max_moq,
                            max_unit_price=self.max_unit_price, capabilities=self.capabilities)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Constraints:
        raw = dict(raw or {})
        if "required_capabilities" in raw:  # the wording, same meaning
            raw["capabilities"] = [*(raw.get("capabilities") or []),
                                   *(raw.pop("required_capabilities") or [])]
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown constraint(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(cls.__dataclass_fields__)}")
        caps = raw.get("capabilities") or ()
        if isinstance(caps, str):
            caps = tuple(part for part in caps.split("|") if part)
        return cls(
            max_moq=_positive(raw, "max_moq", int),
            max_unit_price=_positive(raw, "max_unit_price", float),
            quantity=_positive(raw, "quantity", int),
            supplier_kind=raw.get("supplier_kind"),
            capabilities=tuple(caps),
            min_on_time_rate=_positive(raw, "min_on_time_rate", float),
            min_margin_pct=_positive(raw, "min_margin_pct", float, most=100.0),
        )


def _positive(raw: dict[str, Any], key: str, kind: type, most: float | None = None) -> Any:
    value = raw.get(key)
    if value is None:
        return None
    try:
        value = kind(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"constraint {key}: expected a number, got {value!r}") from exc
    if value != value:  # NaN passes no comparison: it would switch the constraint off
        raise ValueError(f"constraint {key}: expected a number, got {raw.get(key)!r}")
    if value < 0:
        raise ValueError(f"constraint {key}: must not be negative, got {value!r}")
    if most is not None and value > most:
        raise ValueError(f"constraint {key}: must be at most {most:g}, got {value!r}")
    return value


def unit_price_at(listing: Listing, quantity: int | None) -> float | None:
    """Unit price for ``quantity`` pieces from the listing's price tiers, else its price range."""
    tiers = sorted(listing.attributes.get("price_tiers") or [], key=lambda t: t["min_qty"])
    if tiers and quantity is not None:
        price = None
        for tier in tiers:
            if quantity >= tier["min_qty"]:
                price = float(tier["unit_price"])
        return price if price is not None else float(tiers[0]["unit_price"])
    if listing.price_max is not None:
        return listing.price_max
    return listing.price_min


def violations(listing: Listing, supplier: Supplier, constraints: Constraints) -> list[str]:
    """Why this listing fails the hard constraints (empty when it passes). Unknown values fail a
    constraint that needs them: a filter set by the seller is never waved through on a guess."""
    reasons = []
    if constraints.max_moq is not None:
        if listing.moq is None:
            reasons.append("MOQ unknown")
        elif listing.moq > constraints.max_moq:
            reasons.append(f"MOQ {listing.moq} > max_moq {constraints.max_moq}")
    if constraints.max_unit_price is not None:
        price = unit_price_at(listing, constraints.quantity)
        if price is None:
            reasons.append("unit price unknown")
        elif price > constraints.max_unit_price:
            reasons.append(f"unit price {price} > max_unit_price {constraints.max_unit_price}")
    if constraints.supplier_kind and supplier.kind != constraints.supplier_kind:
        reasons.append(f"supplier kind {supplier.kind or 'unknown'} is not "
                       f"{constraints.supplier_kind}")
    missing = [cap for cap in constraints.capabilities if cap not in supplier.capabilities]
    if missing:
        reasons.append(f"lacks capabilities: {', '.join(missing)}")
    if constraints.min_on_time_rate is not None:
        if supplier.on_time_rate is None:
            reasons.append("on-time rate unknown")
        elif supplier.on_time_rate < constraints.min_on_time_rate:
            reasons.append(f"on-time rate {supplier.on_time_rate} < {constraints.min_on_time_rate}")
    return reasons
