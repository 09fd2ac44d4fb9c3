"""Services the nodes use, handed in through LangGraph's runtime context (never module globals).

A test builds a ``Services`` with fakes; ``api.services.build_services`` builds the real one from
settings. Nodes read them as ``runtime.context.<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Mapping

if TYPE_CHECKING:
    from PIL import Image

    from agents.compliance.rules import RuleBook
    from agents.market.hs import HSClassifier
    from agents.market.tools import AmazonMarketData
    from agents.market.trade import TradeData
    from data.catalog.schema import Catalog
    from retrieval.embedders.base import ImageEmbedder, TextEmbedder
    from retrieval.index import VectorIndex
    from retrieval.query import QueryEncoder


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    catalog: Catalog
    image_embedder: ImageEmbedder
    index: VectorIndex
    text_embedder: TextEmbedder
    rulebook: RuleBook
    # marketplace data per market code ("US" -> Amazon US 2023); a market without an entry has none
    market_data: Mapping[str, AmazonMarketData] = field(default_factory=dict)
    # re-ranks the first image-search hits against the query photo; None: first stage only
    reranker: Any = None
    shortlist_size: int = 5
    clock: Callable[[], datetime] = utc_now
    # OpenAI-compatible chat client; None means the deterministic path answers
    llm: Any = None
    # HS classifier over the nomenclature (uses text_embedder); None: HS codes read off listings
    hs_classifier: HSClassifier | None = None
    # tariff, freight and marketplace-fee tables for landed cost; None: landed cost unknown
    trade: TradeData | None = None
    # file keeping the re-ranker's catalog photo features between start-ups
    # (retrieval.feature_store); None: computed at start-up and not kept
    feature_store: Path | None = None
    # turns a query photo into its decoded image and vectors (retrieval.query); None: the
    # standard encoder over ``image_embedder``, made when asked for, so that replacing the
    # embedder (dataclasses.replace) never leaves an encoder of the old one behind
    query_encoder: QueryEncoder | None = None

    def encoder(self) -> QueryEncoder:
        """The query-photo encoder: ``query_encoder`` when given, else the standard one."""
        if self.query_encoder is not None:
            return self.query_encoder
        from retrieval.query import QueryEncoder

        return QueryEncoder(self.image_embedder)

    def photos_of(self, listing_id: str) -> tuple[str, ...]:
        """A listing's photos (paths relative to the catalog folder); none when unknown. The
        re-ranker verifies a candidate on each of them, not only on its best first-stage photo:
        a seller's copy may be of another photo of the listing than the one that looks closest."""
        listing = self.catalog.listings.get(listing_id)
        return listing.images if listing is not None else ()

    def load_catalog_image(self, relative: str) -> Image.Image:
        """A catalog photo by its path relative to the catalog folder (used by re-ranking)."""
        from retrieval.images import load_image

        return load_image(self.catalog.image_path(relative))
