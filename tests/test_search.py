"""search_images with several views of the query, on a small in-memory index of real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retrieval.embedders.descriptor import DescriptorEmbedder
from retrieval.filters import SearchFilter
from retrieval.index import IndexRecord, ListingHit, create_index
from retrieval.search import VIEWS, merge_hits, query_views, search_images

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "data" / "catalogs" / "luma" / "images"

pytestmark = pytest.mark.skipif(not IMAGES.is_dir(), reason="the luma catalog is not present")

N_PHOTOS = 48


class CountingEmbedder(DescriptorEmbedder):
    """The descriptor, counting the photos it is asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def embed_images(self, images):
        self.calls += len(images)
        return super().embed_images(images)


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture(scope="module")
def catalog(embedder):
    """(index, photo names): every photo its own listing, in two alternating product groups."""
    names = sorted(p.name for p in IMAGES.glob("*.jpg"))[::7][:N_PHOTOS]
    assert len(names) >= 20
    vectors = embedder.embed_images([Image.open(IMAGES / name) for name in names])
    index = create_index("faiss", embedder.name, embedder.dim)
    records = [IndexRecord(f"L{i:03d}", name, {"product_id": "even" if i % 2 == 0 else "odd"})
               for i, name in enumerate(names)]
    index.add(records, vectors)
    return index, names


def _load(name: str) -> Image.Image:
    return Image.open(IMAGES / name)


def _rotated(image: Image.Image, angle: float = 28) -> Image.Image:
    return image.convert("RGB").rotate(angle, resample=Image.Resampling.BICUBIC, expand=True,
                                       fillcolor=(30, 30, 30))


def test_query_views_are_crops():
    image = Image.new("RGB", (200, 100), "white")
    crops = query_views(image)
    assert len(crops) == len(VIEWS)
    assert crops[0].size == (100, 50)  # the central half
    assert all(crop.size == (130, 65) for crop in crops[1:])
    assert query_views(Image.new("RGB", (20, 20))) == []
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    assert all(crop.mode == "RGB" for crop in query_views(rgba))


def test_merge_keeps_best_score_per_listing():
    first = [ListingHit("a", 0.9, "a1"), ListingHit("b", 0.5, "b1")]
    second = [ListingHit("b", 0.8, "b2"), ListingHit("c", 0.7, "c1"), ListingHit("a", 0.2, "a2")]
    merged = merge_hits([first, second], [0.0, 0.1], k=10)
    assert [(h.listing_id, h.image) for h in merged] == [("a", "a1"), ("b", "b2"), ("c", "c1")]
    assert merged[1].score == pytest.approx(0.7)
    assert len(merge_hits([first, second], [0.0, 0.1], k=2)) == 2


def _rank_of(hits: list[ListingHit], listing_id: str) -> int | None:
    ids = [hit.listing_id for hit in hits]
    return ids.index(listing_id) if listing_id in ids else None


def test_rotated_copy_found_first_with_views(catalog, embedder):
    index, names = catalog
    found_plain, found_views = [], []
    for i in range(0, len(names), 4):
        query = _rotated(_load(names[i]))
        vector = embedder.embed_images([query])[0]
        # group_weight=0: this fixture's two "products" are halves of the catalog, so a product
        # mean would say nothing about one photo; the test is about the views
        plain = search_images(index, vector, 10, group_weight=0)
        merged = search_images(index, vector, 10, query_image=query, embedder=embedder,
                               group_weight=0)
        found_plain.append(_rank_of(plain, f"L{i:03d}") == 0)
        found_views.append(_rank_of(merged, f"L{i:03d}") == 0)
    # the views never lose a rotated copy the whole photo found, and find most of the others
    # first without any re-ranking (the next test: with it, the copy comes first every time)
    assert sum(found_views) >= sum(found_plain)
    assert sum(found_views) > sum(found_plain) or all(found_plain)
    assert np.mean(found_views) >= 0.8


def test_rotated_copy_found_first_with_reranker(catalog, embedder):
    from retrieval.rerank import LocalFeatureReranker

    index, names = catalog
    reranker = LocalFeatureReranker()
    assert reranker.warm(names, _load, workers=2) == len(names)
    assert reranker.warm(names, _load) == 0  # already cached
    for i in (3, 17, 30):
        query = _rotated(_load(names[i]), -22)
        vector = embedder.embed_images([query])[0]
        hits = search_images(index, vector, 5, None, reranker, query, _load, embedder=embedder)
        assert hits[0].listing_id == f"L{i:03d}"
        assert len(hits) == 5


def test_views_respect_filter_and_k(catalog, embedder):
    index, names = catalog
    query = _rotated(_load(names[6]))  # listing L006, product "even"
    vector = embedder.embed_images([query])[0]
    odd = SearchFilter(product_ids=("odd",))
    for k in (1, 5, 12):
        hits = search_images(index, vector, k, odd, query_image=query, embedder=embedder)
        assert len(hits) == k
        assert all(int(hit.listing_id[1:]) % 2 == 1 for hit in hits)
        assert len({hit.listing_id for hit in hits}) == k
        assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    even = SearchFilter(product_ids=("even",))
    hits = search_images(index, vector, 3, even, query_image=query, embedder=embedder)
    assert hits[0].listing_id == "L006"
    assert all(int(hit.listing_id[1:]) % 2 == 0 for hit in hits)
    unfiltered = search_images(index, vector, len(names) + 10, query_image=query,
                               embedder=embedder)
    assert len(unfiltered) == len(names)  # never more listings than the index holds


def test_views_off_without_embedder_or_image(catalog, embedder):
    index, names = catalog
    query = _load(names[2])
    vector = embedder.embed_images([query])[0]
    before = embedder.calls
    plain = search_images(index, vector, 8)
    assert search_images(index, vector, 8, embedder=embedder) == plain  # no query image
    assert search_images(index, vector, 8, query_image=query, embedder=embedder,
                         views=()) == plain
    assert embedder.calls == before
    search_images(index, vector, 8, query_image=query, embedder=embedder)
    assert embedder.calls == before + len(VIEWS)
