"""Search by words: MiniLM over listing titles offline, the CLIP text tower when configured."""

from pathlib import Path

import numpy as np
import pytest

from data.catalog.schema import Catalog, Listing, Supplier
from retrieval.embedders.base import l2_normalise
from retrieval.embedders.text import HashingTextEmbedder, MiniLMTextEmbedder
from retrieval.index import ImageIndex, IndexEntry
from retrieval.text_search import TextSearch

LISTINGS = {
    "L1": Listing("L1", "S1", "Electric kettle 1.7L stainless steel", ("k.jpg",),
                  category="Kitchen -> Kettles"),
    "L2": Listing("L2", "S1", "Men's pullover hoodie fleece", ("h.jpg",),
                  category="Men/Tops/Hoodies & Sweatshirts"),
    "L3": Listing("L3", "S2", "Yoga mat non-slip TPE", ("y.jpg",), category="Gear/Fitness"),
}
CATALOG = Catalog(Path("."), {"S1": Supplier("S1", "A"), "S2": Supplier("S2", "B")}, LISTINGS)


@pytest.mark.slow
def test_minilm_titles_find_by_meaning():
    search = TextSearch(CATALOG, MiniLMTextEmbedder())
    assert search.mode == "title-minilm"
    assert search.search("sweatshirt for men", k=1)[0].listing_id == "L2"
    assert search.search("boil water", k=1)[0].listing_id == "L1"


def test_allowed_filters_the_title_path_and_k_is_honoured():
    search = TextSearch(CATALOG, HashingTextEmbedder())
    hits = search.search("kettle hoodie mat", k=2, allowed=lambda row: row.supplier_id == "S1")
    assert [hit.listing_id for hit in hits] and all(h.listing_id in {"L1", "L2"} for h in hits)
    assert len(hits) == 2
    with pytest.raises(ValueError, match="empty text query"):
        search.search("   ")


class TwoTowerFake:
    """An image embedder with a text tower: texts and photos share one space."""

    name, dim = "two-tower-fake", 3

    def embed_texts(self, texts):
        table = {"red": [1, 0, 0], "green": [0, 1, 0], "blue": [0, 0, 1]}
        return l2_normalise(np.array([table[t] for t in texts], dtype=np.float32))


def test_clip_text_path_searches_the_image_index():
    vectors = l2_normalise(np.array([[0.9, 0.1, 0], [0, 0.2, 0.9]], dtype=np.float32))
    index = ImageIndex("two-tower-fake", 3, [IndexEntry("L1", "k.jpg"), IndexEntry("L3", "y.jpg")],
                       vectors)
    search = TextSearch(CATALOG, HashingTextEmbedder(), TwoTowerFake(), index)
    assert search.mode == "clip-text"
    assert search.search("blue", k=1)[0].listing_id == "L3"
