"""Image search as the agents use it: first-stage vector search (filtered inside the index),
then optional re-ranking of the first ``rerank_top_n`` hits against the query photo."""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

import numpy as np
from PIL import Image

from retrieval.index import ListingHit

SEARCH_K = 60  # listings an agent fetches per image search
RERANK_TOP_N = 30  # first-stage hits the re-ranker looks at


def search_images(index: Any, vector: np.ndarray, k: int, search_filter: Any = None,
                  reranker: Any = None, query_image: Image.Image | None = None,
                  image_loader: Callable[[str], Image.Image] | None = None,
                  rerank_top_n: int = RERANK_TOP_N) -> list[ListingHit]:
    """The ``k`` best listings for the query, best first."""
    if search_filter is not None and not search_filter.is_empty:
        hits = index.search(vector, k=k, filter=search_filter)
    else:
        hits = index.search(vector, k=k)
    if reranker is not None and query_image is not None and image_loader is not None and hits:
        hits = reranker.rerank(query_image, hits, image_loader, top_n=rerank_top_n)
    return hits
