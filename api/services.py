"""Build the real services from settings: the one place that opens data, models and indexes."""

from __future__ import annotations

import warnings
from pathlib import Path

from agents.compliance.rules import RuleBook
from agents.context import Services
from agents.market.hs import HSClassifier
from agents.market.tools import load_market_tables
from agents.llm.client import ChatClient
from agents.market.trade import TradeData
from api.settings import Settings
from data.catalog.importer import load_catalog
from data.catalog.schema import Catalog
from retrieval.build import build_index, embedder_version, index_matches_catalog
from retrieval.embedders.base import ImageEmbedder
from retrieval.embedders.text import MiniLMTextEmbedder
from retrieval.index import META_FILE, IndexNotFoundError, VectorIndex, open_index


def make_image_embedder(settings: Settings) -> ImageEmbedder:
    if settings.embedder == "clip":
        from retrieval.embedders.clip import ClipEmbedder

        return ClipEmbedder(settings.clip_model, settings.clip_pretrained, device=settings.device)
    from retrieval.embedders.descriptor import DescriptorEmbedder

    # the projection's digest is part of the embedder's version, so an index built with one
    # projection refuses to be searched with another (IndexMismatchError on opening)
    return DescriptorEmbedder(settings.descriptor_projection or "default")


def index_options(settings: Settings) -> dict:
    """Backend options for building the index, from settings."""
    if settings.index_backend != "qdrant":
        return {}
    return {"qdrant_url": settings.qdrant_url, "qdrant_api_key": settings.qdrant_api_key,
            "collection": settings.qdrant_collection}


def build_catalog_index(settings: Settings, catalog: Catalog, embedder: ImageEmbedder,
                        progress: bool = True) -> VectorIndex:
    return build_index(catalog, embedder, settings.index_dir, progress=progress,
                       backend=settings.index_backend, index_type=settings.index_type,
                       **index_options(settings))


def may_build_missing_index(settings: Settings) -> bool:
    """Whether the command line and the server may build a missing index on first use: only
    the demo index in its default place, from the demo catalog, in process (the first
    `make demo` or `make serve` of a fresh clone). Anywhere else a missing index is a mistake
    (a typo in SOURCING_INDEX_DIR, a volume not mounted, a Qdrant collection dropped) that a
    silent build would hide, creating folders or server collections where none were asked for."""
    fields = Settings.model_fields
    on_server = settings.index_backend == "qdrant" and bool(settings.qdrant_url)
    return (not on_server
            and _same_path(settings.index_dir, fields["index_dir"].default)
            and _same_path(settings.catalog_dir, fields["catalog_dir"].default))


def _same_path(a: Path, b: Path) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def load_or_build_index(settings: Settings, catalog: Catalog, embedder: ImageEmbedder,
                        build_if_missing: bool = False, progress: bool = True) -> VectorIndex:
    """Open the index in ``settings.index_dir`` (checked against the embedder); build it from
    the catalog when missing and allowed. Warns on stderr when the catalog changed since."""
    try:
        index = open_index(settings.index_dir, expected_embedder=embedder.name,
                           expected_dim=embedder.dim,
                           expected_version=embedder_version(embedder),
                           qdrant_url=settings.qdrant_url, qdrant_api_key=settings.qdrant_api_key)
    except IndexNotFoundError:
        if build_if_missing:
            return build_catalog_index(settings, catalog, embedder, progress=progress)
        if (Path(settings.index_dir) / META_FILE).exists():
            raise  # an index whose data is gone (e.g. its Qdrant collection): says which
        raise IndexNotFoundError(
            f"no index at {settings.index_dir}: build it with `sourcing index build --catalog "
            f"{settings.catalog_dir} --out {settings.index_dir}`") from None
    if not index_matches_catalog(index, catalog):
        warnings.warn(f"the index at {settings.index_dir} was built from another version of the "
                      "catalog; run `sourcing index update` to bring it up to date", stacklevel=2)
    return index


def build_services(settings: Settings, build_index_if_missing: bool = False,
                   progress: bool = True, rulebook: RuleBook | None = None) -> Services:
    """``rulebook``: one already loaded from ``settings.rules_dir`` (the command line loads it
    first, to refuse an unknown market before the models are loaded)."""
    rulebook = rulebook or RuleBook.load(settings.rules_dir)
    # the small tables first: a mistake in one is reported before the models load
    market_data = load_market_tables(settings.market_dirs,
                                     lambda code: rulebook.market_rules(code).market,
                                     cache_dir=settings.cache_dir)
    catalog = load_catalog(settings.catalog_dir)
    embedder = make_image_embedder(settings)
    index = load_or_build_index(settings, catalog, embedder,
                                build_if_missing=build_index_if_missing, progress=progress)
    reranker = None
    if settings.rerank:
        from retrieval.rerank import LocalFeatureReranker

        reranker = LocalFeatureReranker()
    return Services(
        catalog=catalog,
        image_embedder=embedder,
        index=index,
        text_embedder=MiniLMTextEmbedder(settings.text_model_path),
        rulebook=rulebook,
        market_data=market_data,
        shortlist_size=settings.shortlist_size,
        reranker=reranker,
        llm=ChatClient.from_settings(settings),
        hs_classifier=HSClassifier.load(settings.data_dir / "trade"),
        trade=TradeData(settings.data_dir / "trade"),
        feature_store=feature_store_path(settings),
    )


def feature_store_path(settings: Settings) -> Path:
    """Where the re-ranker's catalog photo features are kept: beside the index folder (not in
    it, so that rebuilding the index keeps the features of unchanged photos)."""
    index_dir = Path(settings.index_dir)
    return index_dir.with_name(f"{index_dir.name}.rerank-features.npz")
