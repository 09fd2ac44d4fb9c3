"""Grouping listings into products.

Listings that share ``product_id`` are one product. A listing without ``product_id`` is grouped
with other such listings, of other suppliers, whose best-matching photo is the same picture (a
trader's re-cropped, re-encoded, watermarked or captioned copy of a factory photo), as judged by
``same_picture`` (local-feature verification). Only the first ``GROUPED_HITS`` unlabelled hits are
compared pairwise, which bounds the cost; without a checker every unlabelled listing stands alone.
"""

from __future__ import annotations

from collections.abc import Callable

from data.catalog.schema import Catalog
from retrieval.index import ListingHit

GROUPED_HITS = 20  # unlabelled hits compared pairwise for same-picture grouping


def group_keys(hits: list[ListingHit], catalog: Catalog,
               same_picture: Callable[[str, str], bool] | None = None) -> dict[str, str]:
    """Listing id -> product key: ``product_id``, or ``listing:<id>`` of the group's first hit."""
    keys: dict[str, str] = {}
    unlabelled: list[ListingHit] = []
    for hit in hits:
        listing = catalog.listings.get(hit.listing_id)
        if listing is None:
            continue
        if listing.product_id:
            keys[hit.listing_id] = listing.product_id
        else:
            keys[hit.listing_id] = f"listing:{hit.listing_id}"
            unlabelled.append(hit)
    if same_picture is None:
        return keys
    leader = {hit.listing_id: hit.listing_id for hit in unlabelled}
    position = {hit.listing_id: rank for rank, hit in enumerate(unlabelled)}

    def find(listing_id: str) -> str:
        while leader[listing_id] != listing_id:
            listing_id = leader[listing_id]
        return listing_id

    compared = unlabelled[:GROUPED_HITS]
    for i, first in enumerate(compared):
        for second in compared[i + 1:]:
            if (catalog.listings[first.listing_id].supplier_id
                    == catalog.listings[second.listing_id].supplier_id):
                continue
            a, b = find(first.listing_id), find(second.listing_id)
            if a != b and same_picture(first.image, second.image):
                # the better-ranked listing leads the merged group
                lead, other = (a, b) if position[a] < position[b] else (b, a)
                leader[other] = lead
    for hit in unlabelled:
        keys[hit.listing_id] = f"listing:{find(hit.listing_id)}"
    return keys
