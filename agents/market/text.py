"""The words of a product that the market agent matches: its category path without merchandising
segments, and its title without the trade boilerplate of supplier listings.

Wholesale listings pad their titles with words about the trade, not the product ("Hot Sale ...
Fast Shipping In Stock", "... Custom Logo OEM Factory"). Embedded with the product's words, they
pull a category match towards the marketplace's trade categories: a toaster titled that way
matched "Packaging & Shipping Supplies" and a blender "Industrial Power & Hand Tools". The phrases
below are removed before matching; the title shown and cited stays as the catalog wrote it.
``sourcing eval market-category`` measures the match with and without them.
"""

from __future__ import annotations

import re

# catalog paths carry merchandising segments ("Collections/...", "Promotions/...") that say
# nothing about the product; what comes before them is kept
MERCHANDISING = re.compile(r"/(collections|promotions)(/.*)?$", re.IGNORECASE)
_PATH_SEPARATOR = re.compile(r"\s*(->|/|>)\s*")

# phrases about the trade rather than the product, as wholesale listings write them (longest
# first, so that "factory direct price" goes whole before "factory")
TRADE_PHRASES = (
    "hot sale", "hot selling", "best selling", "best seller", "top selling", "new arrival",
    "new arrivals", "new design", r"20\d\d new", r"new 20\d\d", "wholesale", "factory direct price",
    "factory direct sale", "factory direct sales", "factory direct", "factory price",
    "direct from factory", "factory outlet", "fast shipping", "fast delivery", "free shipping",
    "ready to ship", "in stock", "dropshipping", "drop shipping", "low moq", "small moq",
    "free sample", "free samples", "custom logo", "customized logo", "customised logo",
    "oem odm", "oem/odm", "oem", "odm", "manufacturer", "manufacturers", "supplier", "suppliers",
    "factory", "cross-border", "cross border",
)
TRADE_BOILERPLATE = re.compile(
    r"(?<![\w-])(?:" + "|".join(sorted(TRADE_PHRASES, key=len, reverse=True)) + r")(?![\w-])",
    re.IGNORECASE)


def category_words(category: object) -> str:
    """A catalog category path as words: merchandising segments dropped, separators
    (``/``, ``->``, ``>``) made spaces."""
    path = MERCHANDISING.sub("", str(category or ""))
    return _PATH_SEPARATOR.sub(" ", path).strip()


def without_boilerplate(title: object) -> str:
    """``title`` without the trade phrases (``TRADE_PHRASES``), spaces tidied."""
    return " ".join(TRADE_BOILERPLATE.sub(" ", str(title or "")).split())
