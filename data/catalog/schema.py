"""Supplier-catalog records (the on-disk contract in DESIGN.md, as typed objects).

A catalog is a folder with ``suppliers.csv``, ``listings.csv`` and image files. Every optional
column may be absent or empty: the field is then ``None`` (or an empty tuple), and agents say
"unknown" instead of guessing. Money is in ``currency`` units per piece; weights in kilograms;
rates are fractions in 0..1; hours and days are plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

SupplierKind = Literal["factory", "trading_company"]
SUPPLIER_KINDS: tuple[str, ...] = get_args(SupplierKind)

SUPPLIER_REQUIRED = ("supplier_id", "name")
SUPPLIER_OPTIONAL = (
    "kind", "country", "province", "city", "years_in_business", "staff", "certifications",
    "capabilities", "response_rate", "response_hours", "on_time_rate", "repurchase_rate",
    "dispatch_48h_rate", "export_markets", "languages",
)
LISTING_REQUIRED = ("listing_id", "supplier_id", "title", "images")
LISTING_OPTIONAL = (
    "product_id", "category", "hs_code", "material", "price_min", "price_max", "currency", "moq",
    "lead_time_days", "weight_kg", "attributes",
)
CAPABILITIES = ("small_batch", "oem", "odm", "custom_logo", "dropship", "samples")


@dataclass(frozen=True)
class Supplier:
    """One row of ``suppliers.csv``; ``line`` is its 1-based line in the file (header is line 1)."""

    supplier_id: str
    name: str
    kind: SupplierKind | None = None
    country: str | None = None
    province: str | None = None
    city: str | None = None
    years_in_business: int | None = None
    staff: int | None = None
    certifications: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    response_rate: float | None = None
    response_hours: float | None = None
    on_time_rate: float | None = None
    repurchase_rate: float | None = None
    dispatch_48h_rate: float | None = None
    export_markets: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    line: int = 0

    def as_record(self) -> dict[str, Any]:
        """The supplier as a JSON-ready dict (tuples become lists, ``line`` dropped)."""
        return _as_record(self)


@dataclass(frozen=True)
class Listing:
    """One row of ``listings.csv``. ``images`` are paths relative to the catalog folder."""

    listing_id: str
    supplier_id: str
    title: str
    images: tuple[str, ...]
    product_id: str | None = None
    category: str | None = None
    hs_code: str | None = None
    material: str | None = None
    price_min: float | None = None
    price_max: float | None = None
    currency: str | None = None
    moq: int | None = None
    lead_time_days: int | None = None
    weight_kg: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    line: int = 0

    def as_record(self) -> dict[str, Any]:
        return _as_record(self)


@dataclass
class Catalog:
    """A validated catalog held in memory. Build it with ``data.catalog.importer.load_catalog``."""

    root: Path
    suppliers: dict[str, Supplier]
    listings: dict[str, Listing]
    _by_product: dict[str, list[Listing]] | None = field(default=None, init=False, repr=False,
                                                         compare=False)

    def image_path(self, relative: str) -> Path:
        return self.root / relative

    def listings_of_product(self, product_id: str) -> list[Listing]:
        """Listings sharing ``product_id`` (an index built on first use)."""
        if self._by_product is None:
            self._by_product = {}
            for row in self.listings.values():
                if row.product_id:
                    self._by_product.setdefault(row.product_id, []).append(row)
        return list(self._by_product.get(product_id, []))

    def supplier_of(self, listing_id: str) -> Supplier:
        return self.suppliers[self.listings[listing_id].supplier_id]


def _as_record(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in obj.__dataclass_fields__:
        if name == "line":
            continue
        value = getattr(obj, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out
