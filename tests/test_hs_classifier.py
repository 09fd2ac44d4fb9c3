"""The HS classifier's choice of subheading: a whole product is not classified as parts of its
heading unless the heading has nothing else."""

from __future__ import annotations

from agents.market.hs import HSClassifier
from retrieval.embedders.text import HashingTextEmbedder

SUBHEADINGS = {
    "851679": "Steamers; other domestic appliances",
    "851690": "Steamers; parts of garment steamers",
    "999990": "Widgets; parts of widgets",
}
HEADINGS = {"8516": "Steamers", "9999": "Widgets"}


def _top(product: dict) -> str:
    classifier = HSClassifier(SUBHEADINGS, HEADINGS, priors=[])
    return classifier.classify(HashingTextEmbedder(), product)[0]["code"]


def test_a_whole_product_is_not_classified_as_parts():
    # by words alone the parts subheading is nearer ("garment steamers"); the product is whole
    classifier = HSClassifier(SUBHEADINGS, HEADINGS, priors=[])
    embedder = HashingTextEmbedder()
    vectors = classifier._matrix(embedder)
    query = embedder.embed_texts(["garment steamers"])[0]
    assert vectors[1] @ query > vectors[0] @ query
    assert _top({"title": "garment steamers"}) == "851679"


def test_a_product_that_says_it_is_a_part_may_be():
    for title in ("garment steamers spare parts", "garment steamers replacement",
                  "garment steamers accessory", "garment steamer part"):
        assert _top({"title": title}) == "851690", title


def test_a_heading_with_only_parts_keeps_them():
    assert _top({"title": "widgets"}) == "999990"
