"""Naming the likely source of a product group: the supplier that makes the product, as opposed
to trading companies re-listing it with copies of the maker's photos.

Signals, each scored 0..1 inside the group and weighted (``SOURCE_WEIGHTS``):

- ``factory``: the supplier is a factory (1), a trading company (0), or unknown (0.5);
- ``original_photos``: its photos look least re-processed: the highest estimated JPEG quality and
  the most pixels in the group (a re-listed copy is usually re-compressed, cropped or shrunk);
- ``lowest_price``: a maker sells below the traders that buy from it (cheapest = 1);
- ``years``: years in business relative to the longest in the group.

The reasons returned quote the facts that decided, so the naming can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image

from data.catalog.schema import Catalog, Listing

SOURCE_WEIGHTS = {"factory": 0.4, "original_photos": 0.3, "lowest_price": 0.2, "years": 0.1}

# the IJG standard luminance quantisation table (quality 50), row-major
_IJG_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40,
             57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35,
             55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100,
             103, 99)


@dataclass(frozen=True)
class PhotoStats:
    width: int
    height: int
    jpeg_quality: float | None  # estimated 1..100; None for lossless formats

    @property
    def pixels(self) -> int:
        return self.width * self.height


def estimate_jpeg_quality(image: Image.Image) -> float | None:
    """IJG quality (1..100) that would produce the file's luminance table, or None if not JPEG."""
    tables = getattr(image, "quantization", None)
    if not tables:
        return None
    luma = tables.get(0)
    if not luma:
        return None
    scale = 100.0 * sum(luma) / sum(_IJG_LUMA)
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return round(max(1.0, min(100.0, quality)), 1)


@lru_cache(maxsize=8192)
def photo_stats(path: Path) -> PhotoStats | None:
    """Size and JPEG quality of one photo, read from its header (cached per path)."""
    try:
        with Image.open(path) as image:
            return PhotoStats(image.width, image.height, estimate_jpeg_quality(image))
    except OSError:
        return None


def _originality(listing: Listing, catalog: Catalog) -> tuple[float, float, int]:
    """(mean JPEG quality or 100 for lossless, mean pixels, photos read) over a listing's photos."""
    qualities, pixels = [], []
    for image in listing.images:
        stats = photo_stats(catalog.image_path(image))
        if stats is None:
            continue
        qualities.append(stats.jpeg_quality if stats.jpeg_quality is not None else 100.0)
        pixels.append(stats.pixels)
    if not qualities:
        return 0.0, 0.0, 0
    return sum(qualities) / len(qualities), sum(pixels) / len(pixels), len(qualities)


def name_source(listings: list[Listing], catalog: Catalog) -> dict[str, Any]:
    """The likely source among the listings of one product group, with scores and reasons."""
    if not listings:
        return {"supplier_id": None, "listing_id": None, "reasons": ["no listings"], "scores": {}}
    photo = {row.listing_id: _originality(row, catalog) for row in listings}
    best_quality = max(q for q, _, _ in photo.values()) or 1.0
    best_pixels = max(p for _, p, _ in photo.values()) or 1.0
    prices = {row.listing_id: row.price_min for row in listings if row.price_min is not None}
    cheapest = min(prices.values()) if prices else None
    years = {row.listing_id: catalog.suppliers[row.supplier_id].years_in_business
             for row in listings}
    most_years = max((y for y in years.values() if y is not None), default=None)

    ranked = []
    for row in listings:
        supplier = catalog.suppliers[row.supplier_id]
        quality, pixels, read = photo[row.listing_id]
        scores = {
            "factory": {"factory": 1.0, "trading_company": 0.0}.get(supplier.kind or "", 0.5),
            "original_photos": (quality / best_quality) * (pixels / best_pixels) if read else 0.0,
            "lowest_price": (cheapest / prices[row.listing_id]
                             if cheapest and row.listing_id in prices else 0.0),
            "years": (years[row.listing_id] / most_years
                      if most_years and years[row.listing_id] is not None else 0.0),
        }
        total = sum(SOURCE_WEIGHTS[name] * value for name, value in scores.items())
        ranked.append((round(total, 4), row, supplier, scores))
    ranked.sort(key=lambda item: (-item[0], item[1].listing_id))
    total, row, supplier, scores = ranked[0]

    reasons = []
    if supplier.kind == "factory":
        others = sum(1 for _, r, s, _ in ranked[1:] if s.kind == "factory")
        reasons.append("the only factory in the group" if not others else "a factory")
    elif supplier.kind is None:
        reasons.append("supplier kind unknown")
    quality, pixels, read = photo[row.listing_id]
    if read and len(listings) > 1:
        other_quality = [photo[r.listing_id][0] for _, r, _, _ in ranked[1:]
                         if photo[r.listing_id][2]]
        if other_quality and quality >= max(other_quality):
            reasons.append(f"least re-processed photos: estimated JPEG quality {quality:.0f} "
                           f"vs at most {max(other_quality):.0f} in the other listings")
    if cheapest is not None and prices.get(row.listing_id) == cheapest and len(prices) > 1:
        reasons.append(f"lowest price in the group ({cheapest} {row.currency or ''})".rstrip())
    if most_years is not None and years[row.listing_id] == most_years and len(listings) > 1:
        reasons.append(f"longest in business in the group ({most_years} years)")
    return {"supplier_id": supplier.supplier_id, "listing_id": row.listing_id,
            "confidence": total, "reasons": reasons or ["highest source score in the group"],
            "scores": {name: round(value, 4) for name, value in scores.items()}}
