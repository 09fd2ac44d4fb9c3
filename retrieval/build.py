"""Building an image index from a validated catalog: read photos, embed in batches, save."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from data.catalog.schema import Catalog
from retrieval.embedders.base import ImageEmbedder
from retrieval.images import load_image
from retrieval.index import ImageIndex, IndexEntry


def build_index(catalog: Catalog, embedder: ImageEmbedder, out: str | Path | None = None,
                batch_size: int = 32, progress: bool = True) -> ImageIndex:
    """Embed every photo of every listing; save to ``out`` (atomically) when given.

    Nothing is written until every photo has been read and embedded, so a catalog with a
    broken photo leaves an existing index untouched.
    """
    entries = [IndexEntry(listing.listing_id, image)
               for listing in sorted(catalog.listings.values(), key=lambda row: row.listing_id)
               for image in listing.images]
    index = ImageIndex(embedder.name, embedder.dim,
                       info={"catalog": str(catalog.root), "listings": len(catalog.listings)})
    bar = tqdm(total=len(entries), desc="embedding photos", unit="img", disable=not progress)
    for start in range(0, len(entries), batch_size):
        batch = entries[start:start + batch_size]
        images = [load_image(catalog.image_path(entry.image)) for entry in batch]
        index.add(batch, embedder.embed_images(images))
        bar.update(len(batch))
    bar.close()
    if out is not None:
        index.save(out)
    return index
