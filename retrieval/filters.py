"""Search filters: which listings an image search may return, and the payload they are checked on.

Every vector in an index carries the payload of its listing (:func:`payload_of`): the listing's
category, MOQ and lowest known unit price, and its supplier's id, kind, country, certifications
and capabilities. A :class:`SearchFilter` is evaluated *inside* the search by every backend, so a
filtered query returns the best passing listings, not what is left of an unfiltered top k.

A listing whose value for a filtered field is unknown (``None``) fails that filter: a limit set
by the seller is never waved through on a guess. Prices are in the listing's currency per piece.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from data.catalog.schema import Listing, Supplier

# payload keys, one per filterable field of a vector (plus where it came from)
PAYLOAD_KEYS = ("listing_id", "image", "supplier_id", "product_id", "category", "supplier_kind",
                "moq", "price_min", "certifications", "capabilities", "country")


@dataclass(frozen=True)
class SearchFilter:
    """Conditions a listing must meet to be returned; every field set must pass (AND).

    ``max_unit_price`` is compared with the listing's *lowest* known unit price (``price_min``
    in the payload, the cheapest price tier included), so this prefilter never drops a listing
    that some order quantity would make pass; the exact price at the seller's quantity is checked
    later by the supplier-match agent. ``certifications`` and ``capabilities`` require the
    supplier to hold all of them (certifications compared case-insensitively).
    """

    categories: tuple[str, ...] = ()
    supplier_kind: str | None = None
    max_moq: int | None = None
    max_unit_price: float | None = None
    certifications: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    supplier_ids: tuple[str, ...] = ()
    product_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # normalise so that every backend compares the same canonical values
        set_ = object.__setattr__
        set_(self, "categories", _strings(self.categories, "categories"))
        set_(self, "certifications",
             tuple(sorted({v.upper() for v in _strings(self.certifications, "certifications")})))
        set_(self, "capabilities",
             tuple(sorted({v.lower() for v in _strings(self.capabilities, "capabilities")})))
        set_(self, "countries", tuple(v.upper() for v in _strings(self.countries, "countries")))
        set_(self, "supplier_ids", _strings(self.supplier_ids, "supplier_ids"))
        set_(self, "product_ids", _strings(self.product_ids, "product_ids"))
        if self.max_moq is not None:
            set_(self, "max_moq", _non_negative(self.max_moq, "max_moq", int))
        if self.max_unit_price is not None:
            set_(self, "max_unit_price",
                 _non_negative(self.max_unit_price, "max_unit_price", float))
        if self.supplier_kind is not None:
            if not isinstance(self.supplier_kind, str):
                raise ValueError(
                    f"filter supplier_kind: expected text, got {self.supplier_kind!r}")
            set_(self, "supplier_kind", self.supplier_kind.strip() or None)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> SearchFilter:
        """Build from JSON-like input. List fields take a list or a ``|``-separated string."""
        raw = dict(raw or {})
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValueError(f"unknown search filter key(s): {', '.join(unknown)}; "
                             f"known: {', '.join(known)}")
        return cls(**{key: value for key, value in raw.items() if value is not None})

    @property
    def is_empty(self) -> bool:
        """True when the filter lets every listing through."""
        return self == SearchFilter()

    def as_dict(self) -> dict[str, Any]:
        """The fields that are set, JSON-ready."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value not in (None, ()):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def lowest_unit_price(listing: Listing) -> float | None:
    """The cheapest unit price the listing states anywhere (``price_min``, its price tiers, or
    ``price_max`` when it is the only price), or ``None`` when it states none."""
    prices = [listing.price_min, listing.price_max]
    for tier in listing.attributes.get("price_tiers") or []:
        if isinstance(tier, dict) and tier.get("unit_price") is not None:
            prices.append(float(tier["unit_price"]))
    known = [float(p) for p in prices if p is not None]
    return min(known) if known else None


def payload_of(listing: Listing, supplier: Supplier | None, image: str | None = None
               ) -> dict[str, Any]:
    """The filterable payload stored with each photo vector of ``listing``.

    ``price_min`` is the lowest known unit price (:func:`lowest_unit_price`), ``moq`` in pieces;
    certifications are upper-cased, capabilities lower-cased; unknown values are ``None``.
    """
    return {
        "listing_id": listing.listing_id,
        "image": image,
        "supplier_id": listing.supplier_id,
        "product_id": listing.product_id,
        "category": listing.category,
        "supplier_kind": supplier.kind if supplier else None,
        "moq": listing.moq,
        "price_min": lowest_unit_price(listing),
        "certifications": sorted({c.upper() for c in supplier.certifications}) if supplier else [],
        "capabilities": sorted({c.lower() for c in supplier.capabilities}) if supplier else [],
        "country": supplier.country.upper() if supplier and supplier.country else None,
    }


def canonical_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload with set fields as sorted lists in canonical case (certifications and
    countries upper, capabilities lower), as every backend stores it."""
    out = dict(payload)
    for key, fold in (("certifications", str.upper), ("capabilities", str.lower)):
        if key in out:
            values = out[key] or ()
            if isinstance(values, str):
                values = values.split("|")
            out[key] = sorted({fold(str(v)) for v in values if str(v)})
    if isinstance(out.get("country"), str):
        out["country"] = out["country"].upper()
    return out


def passes(payload: dict[str, Any], search_filter: SearchFilter | None) -> bool:
    """Reference check of one payload against a filter (the backends evaluate it in bulk)."""
    f = search_filter
    if f is None or f.is_empty:
        return True
    if f.categories and payload.get("category") not in f.categories:
        return False
    if f.supplier_kind is not None and payload.get("supplier_kind") != f.supplier_kind:
        return False
    if f.max_moq is not None and (payload.get("moq") is None or payload["moq"] > f.max_moq):
        return False
    if f.max_unit_price is not None and (payload.get("price_min") is None
                                         or payload["price_min"] > f.max_unit_price):
        return False
    if not set(f.certifications) <= {c.upper() for c in payload.get("certifications") or ()}:
        return False
    if not set(f.capabilities) <= {c.lower() for c in payload.get("capabilities") or ()}:
        return False
    if f.countries and payload.get("country") not in f.countries:
        return False
    if f.supplier_ids and payload.get("supplier_id") not in f.supplier_ids:
        return False
    return not (f.product_ids and payload.get("product_id") not in f.product_ids)


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split("|")
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"filter {name}: expected a list of text, got {value!r}") from None
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"filter {name}: expected text values, got {item!r}")
    return tuple(item.strip() for item in items if item.strip())


def _non_negative(value: Any, name: str, kind: type) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"filter {name}: expected a number, got {value!r}")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"filter {name}: expected a number, got {value!r}") from None
    if kind is int and float(value) != number:
        raise ValueError(f"filter {name}: expected a whole number, got {value!r}")
    if number < 0:
        raise ValueError(f"filter {name}: must not be negative, got {value!r}")
    return number
