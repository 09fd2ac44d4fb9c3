"""Search by words: find listings from a text query.

Two paths, chosen by what is configured:

- ``clip-text``: the image embedder has a text tower (open_clip); the query is embedded with it
  and searched against the image index itself, so words find photos directly;
- ``title-minilm`` (offline default): the query and every listing's title and category are
  embedded with MiniLM and compared by cosine similarity. The title matrix is built on first use.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

import numpy as np

from data.catalog.schema import Catalog, Listing
from retrieval.embedders.base import ImageEmbedder, TextEmbedder
from retrieval.index import ListingHit


class TextSearch:
    def __init__(self, catalog: Catalog, text_embedder: TextEmbedder,
                 image_embedder: ImageEmbedder | None = None, image_index: Any = None) -> None:
        self.catalog = catalog
        self.text_embedder = text_embedder
        self.image_embedder = image_embedder
        self.image_index = image_index
        self._ids: list[str] = []
        self._matrix: np.ndarray | None = None

    @property
    def mode(self) -> str:
        if self.image_index is not None and hasattr(self.image_embedder, "embed_texts"):
            return "clip-text"
        return "title-minilm"

    def _titles(self) -> tuple[list[str], np.ndarray]:
        if self._matrix is None:
            listings = sorted(self.catalog.listings.values(), key=lambda row: row.listing_id)
            self._ids = [row.listing_id for row in listings]
            texts = [" | ".join(filter(None, [row.title, row.category, row.material]))
                     for row in listings]
            self._matrix = self.text_embedder.embed_texts(texts)
        return self._ids, self._matrix

    def search(self, query: str, k: int = 10, search_filter: Any = None,
               allowed: Callable[[Listing], bool] | None = None) -> list[ListingHit]:
        """The ``k`` best listings for ``query``. ``search_filter`` is passed to the image index
        (clip-text); ``allowed`` filters listings on the title path."""
        query = query.strip()
        if not query:
            raise ValueError("empty text query")
        if self.mode == "clip-text":
            vector = self.image_embedder.embed_texts([query])[0]  # type: ignore[union-attr]
            if search_filter is not None:
                return self.image_index.search(vector, k=k, filter=search_filter)
            return self.image_index.search(vector, k=k)
        ids, matrix = self._titles()
        scores = matrix @ self.text_embedder.embed_texts([query])[0]
        hits = []
        for row in np.argsort(-scores, kind="stable"):
            listing = self.catalog.listings[ids[row]]
            if allowed is not None and not allowed(listing):
                continue
            hits.append(ListingHit(listing.listing_id, float(scores[row]), listing.images[0]))
            if len(hits) == k:
                break
        return hits
