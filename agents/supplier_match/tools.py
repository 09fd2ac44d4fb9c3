"""Supplier-match building blocks: group search hits into products, apply hard constraints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from data.catalog.schema import CAPABILITIES, SUPPLIER_KINDS, Listing, Supplier
from retrieval.filters import SearchFilter

# Sanity bounds: a larger value is a typo, and a landed cost for it would be computed in earnest.
MAX_PIECES = 10_000_000  # quantity and max_moq
MAX_UNIT_PRICE = 1_000_000.0  # as agents.shortlist.landed_cost.MAX_SALE_PRICE caps a sale price


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
        per-quantity checks (``violations``) run on the candidates afterwards. An order of
        ``quantity`` pieces needs an MOQ of at most that many, so it bounds the MOQ too."""
        moqs = [limit for limit in (self.max_moq, self.quantity) if limit is not None]
        return SearchFilter(supplier_kind=self.supplier_kind,
                            max_moq=min(moqs) if moqs else None,
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
        if not isinstance(caps, list | tuple) or not all(isinstance(c, str) for c in caps):
            raise ValueError(f"constraint capabilities: expected a list of names, got {caps!r}")
        unknown_caps = [cap for cap in caps if cap not in CAPABILITIES]
        if unknown_caps:  # no supplier can list it: the run would end empty without a word
            raise ValueError(f"constraint capabilities: unknown {', '.join(map(repr, unknown_caps))}"
                             f"; known: {', '.join(CAPABILITIES)}")
        kind = raw.get("supplier_kind")
        if kind is not None and kind not in SUPPLIER_KINDS:
            raise ValueError(f"constraint supplier_kind: expected one of "
                             f"{', '.join(SUPPLIER_KINDS)}, got {kind!r}")
        return cls(
            max_moq=_positive(raw, "max_moq", int, least=1, most=MAX_PIECES),
            max_unit_price=_positive(raw, "max_unit_price", float, most=MAX_UNIT_PRICE),
            quantity=_positive(raw, "quantity", int, least=1, most=MAX_PIECES),
            supplier_kind=kind,
            capabilities=tuple(caps),
            min_on_time_rate=_positive(raw, "min_on_time_rate", float, most=1.0),
            min_margin_pct=_positive(raw, "min_margin_pct", float, most=100.0),
        )


def _positive(raw: dict[str, Any], key: str, kind: type, least: float = 0.0,
              most: float | None = None) -> Any:
    """``raw[key]`` as ``kind``, between ``least`` and ``most``; ``ValueError`` naming the
    constraint otherwise. ``True`` is not 1 and 2.5 pieces are not 2: both are refused."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"constraint {key}: expected a number, got {value!r}")
    try:
        converted = kind(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"constraint {key}: expected a number, got {value!r}") from exc
    if converted != converted or converted in (float("inf"), float("-inf")):
        # NaN passes no comparison: it would switch the constraint off
        raise ValueError(f"constraint {key}: expected a number, got {value!r}")
    if converted < least:
        raise ValueError(f"constraint {key}: must be at least {least:g}, got {value!r}")
    if most is not None and converted > most:
        limit = f"{int(most):,}" if float(most).is_integer() else f"{most:g}"
        raise ValueError(f"constraint {key}: must be at most {limit}, got {value!r}")
    # after the bounds: float() of a huge whole number would overflow
    if kind is int and float(value) != converted:
        raise ValueError(f"constraint {key}: expected a whole number, got {value!r}")
    return converted


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
    if constraints.max_moq is not None or constraints.quantity is not None:
        if listing.moq is None:
            reasons.append("MOQ unknown")
        else:
            if constraints.max_moq is not None and listing.moq > constraints.max_moq:
                reasons.append(f"MOQ {listing.moq} > max_moq {constraints.max_moq}")
            if constraints.quantity is not None and listing.moq > constraints.quantity:
                # the supplier does not sell so few: no price or landed cost exists for them
                reasons.append(f"MOQ {listing.moq} > quantity {constraints.quantity}")
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
