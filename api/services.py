"""Build the real services from settings: the one place that opens data, models and indexes."""

from __future__ import annotations

from pathlib import Path

from agents.compliance.rules import RuleBook
from agents.context import Services
from agents.market.tools import AmazonMarketData
from api.settings import Settings
from data.catalog.importer import load_catalog
from data.catalog.schema import Catalog
from retrieval.build import build_index
from retrieval.embedders.base import ImageEmbedder
from retrieval.embedders.text import MiniLMTextEmbedder
from retrieval.index import ImageIndex, IndexNotFoundError


def make_image_embedder(settings: Settings) -> ImageEmbedder:
    if settings.embedder == "clip":
        from retrieval.embedders.clip import ClipEmbedder

        return ClipEmbedder(settings.clip_model, settings.clip_pretrained, device=settings.device)
    from retrieval.embedders.descriptor import DescriptorEmbedder

    return DescriptorEmbedder()


def load_or_build_index(catalog: Catalog, embedder: ImageEmbedder, index_dir: Path,
                        build_if_missing: bool = False, progress: bool = True) -> ImageIndex:
    try:
        return ImageIndex.load(index_dir, expected_embedder=embedder.name,
                               expected_dim=embedder.dim)
    except IndexNotFoundError:
        if not build_if_missing:
            raise
        return build_index(catalog, embedder, index_dir, progress=progress)


def build_services(settings: Settings, build_index_if_missing: bool = False,
                   progress: bool = True) -> Services:
    catalog = load_catalog(settings.catalog_dir)
    embedder = make_image_embedder(settings)
    index = load_or_build_index(catalog, embedder, settings.index_dir,
                                build_if_missing=build_index_if_missing, progress=progress)
    return Services(
        catalog=catalog,
        image_embedder=embedder,
        index=index,
        text_embedder=MiniLMTextEmbedder(settings.text_model_path),
        rulebook=RuleBook.load(settings.rules_dir),
        market_data={"US": AmazonMarketData.load(settings.market_dir)},
        shortlist_size=settings.shortlist_size,
    )
