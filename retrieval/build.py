"""Building and updating an image index from a validated catalog.

``build_index`` reads every photo, embeds in batches and adds one vector per photo with its
listing's payload; nothing is written until every photo is embedded. ``update_index`` brings an
existing index in line with a changed catalog and re-embeds only the listings whose photos
changed: it compares each listing's fingerprint stored in the index with the catalog's.

Fingerprints are sha256 hex digests over the parsed catalog rows (so re-ordering rows or
re-formatting a number changes nothing) and over the photo files' sizes and bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from data.catalog.schema import Catalog, Listing, Supplier
from retrieval.embedders.base import ImageEmbedder
from retrieval.filters import payload_of
from retrieval.images import ImageDecodeError, load_image
from retrieval.index import (
    IndexMismatchError,
    IndexRecord,
    ListingFingerprint,
    VectorIndex,
    create_index,
)


@dataclass(frozen=True)
class UpdateReport:
    """What ``update_index`` did, by listing id. ``updated`` holds both re-embedded listings
    (photos changed) and listings whose payload alone was re-written (row or supplier changed)."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    unchanged: int = 0
    photos_embedded: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted)


class ImageDigests:
    """Size (bytes) and sha256 of catalog photo files, each file read once."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._cache: dict[str, tuple[int, str]] = {}

    def __call__(self, relative: str) -> tuple[int, str]:
        known = self._cache.get(relative)
        if known is None:
            data = self._catalog.image_path(relative).read_bytes()
            known = self._cache[relative] = (len(data), hashlib.sha256(data).hexdigest())
        return known


def images_fingerprint(listing: Listing, catalog: Catalog,
                       digests: ImageDigests | None = None) -> str:
    """Digest of the listing's photos: paths, sizes and bytes, in the listing's order."""
    digests = digests or ImageDigests(catalog)
    h = hashlib.sha256(b"images\0")
    for image in listing.images:
        size, digest = digests(image)
        h.update(f"{image}\0{size}\0{digest}\n".encode())
    return h.hexdigest()


def listing_fingerprint(listing: Listing, supplier: Supplier | None, catalog: Catalog,
                        digests: ImageDigests | None = None) -> str:
    """Digest of everything a listing's vectors and payload come from: its row, its supplier's
    row and its photos."""
    return _listing_fingerprints(listing, supplier, catalog, digests).listing


def catalog_fingerprint(catalog: Catalog, digests: ImageDigests | None = None) -> str:
    """Digest of the whole catalog: every supplier and listing row and every photo file."""
    digests = digests or ImageDigests(catalog)
    h = hashlib.sha256(b"catalog\0")
    for supplier_id in sorted(catalog.suppliers):
        h.update(b"S" + _row_bytes(catalog.suppliers[supplier_id].as_record()) + b"\n")
    for listing_id in sorted(catalog.listings):
        h.update(b"L" + _row_bytes(catalog.listings[listing_id].as_record()) + b"\n")
    images = sorted({image for listing in catalog.listings.values() for image in listing.images})
    for image in images:
        size, digest = digests(image)
        h.update(f"I{image}\0{size}\0{digest}\n".encode())
    return h.hexdigest()


def catalog_fingerprints(catalog: Catalog, digests: ImageDigests | None = None
                         ) -> dict[str, ListingFingerprint]:
    """Listing id -> fingerprint, for every listing of the catalog."""
    digests = digests or ImageDigests(catalog)
    return {listing_id: _listing_fingerprints(listing, catalog.suppliers.get(listing.supplier_id),
                                              catalog, digests)
            for listing_id, listing in sorted(catalog.listings.items())}


def index_matches_catalog(index: VectorIndex, catalog: Catalog) -> bool:
    """True when the index was built (or last updated) from exactly this catalog."""
    return index.catalog_fingerprint == catalog_fingerprint(catalog)


def build_index(catalog: Catalog, embedder: ImageEmbedder, out: str | Path | None = None,
                batch_size: int = 32, progress: bool = True, backend: str = "faiss",
                index_type: str = "auto", qdrant_url: str | None = None,
                qdrant_api_key: str | None = None, **options: Any) -> VectorIndex:
    """Embed every photo of every listing; save to ``out`` (atomically) when given.

    ``backend`` is ``faiss`` (``index_type``: ``auto``, ``flat``, ``hnsw`` or ``ivf``) or
    ``qdrant`` (on the server at ``qdrant_url`` when given, else in process); ``options`` go to
    the backend (e.g. ``collection``, ``shard_number``, ``replication_factor``, ``nprobe``).
    Nothing is written until every photo has been read and embedded, so a catalog with a
    broken photo leaves an existing index untouched; every photo that cannot be used is named
    in one ``CatalogPhotoError``.
    """
    if backend == "faiss":
        options["index_type"] = index_type
    elif backend == "qdrant":
        options.update(url=qdrant_url, api_key=qdrant_api_key)
    index = create_index(backend, embedder.name, embedder.dim,
                         embedder_version=embedder_version(embedder),
                         info={"catalog": str(catalog.root)}, **options)
    try:
        digests = ImageDigests(catalog)
        _embed(catalog, embedder, sorted(catalog.listings), batch_size, progress,
               on_batch=index.add)
        index.fingerprints = catalog_fingerprints(catalog, digests)
        index.catalog_fingerprint = catalog_fingerprint(catalog, digests)
        index.compact()
        if out is not None:
            index.save(out)
    except BaseException:
        index.discard()
        raise
    return index


def update_index(index: VectorIndex, catalog: Catalog, embedder: ImageEmbedder,
                 progress: bool = True, batch_size: int = 32) -> UpdateReport:
    """Bring ``index`` in line with ``catalog``, re-embedding only listings whose photos changed.

    New listings are embedded and added, removed ones deleted, listings whose photos changed
    re-embedded, and listings whose row or supplier row changed (same photos) get their payload
    re-written. Every photo is embedded before the index is touched, so broken photos (all of
    them named in one ``CatalogPhotoError``) leave it as it was. The index is changed in memory
    (a Qdrant server index: in its collection); ``save`` it to make the change durable. Search
    results afterwards equal those of a full rebuild from ``catalog``.
    """
    if index.embedder_name != embedder.name or index.dim != embedder.dim:
        raise IndexMismatchError(
            f"index was built with embedder {index.embedder_name!r} (dimension {index.dim}); "
            f"the configured embedder is {embedder.name!r} (dimension {embedder.dim}); "
            "rebuild it with `sourcing index build`")
    digests = ImageDigests(catalog)
    current = catalog_fingerprints(catalog, digests)
    stored = index.fingerprints
    indexed = index.listings()
    deleted = sorted(indexed - current.keys())
    added = sorted(current.keys() - indexed)
    re_embed, re_payload, unchanged = [], [], 0
    for listing_id in sorted(current.keys() & indexed):
        before, now = stored.get(listing_id), current[listing_id]
        if before == now:
            unchanged += 1
        elif before is not None and before.images == now.images:
            re_payload.append(listing_id)
        else:
            re_embed.append(listing_id)

    records, vectors = _embed(catalog, embedder, added + re_embed, batch_size, progress)
    index.delete(deleted + re_embed)
    if records:
        index.add(records, vectors)
    index.update_payloads({listing_id: _payload(catalog, listing_id) for listing_id in re_payload})
    index.fingerprints = current
    index.catalog_fingerprint = catalog_fingerprint(catalog, digests)
    index.info["catalog"] = str(catalog.root)
    return UpdateReport(added=tuple(added), updated=tuple(sorted(re_embed + re_payload)),
                        deleted=tuple(deleted), unchanged=unchanged,
                        photos_embedded=len(records))


# -- internals -----------------------------------------------------------------------------------


def _embed(catalog: Catalog, embedder: ImageEmbedder, listing_ids: Sequence[str],
           batch_size: int, progress: bool, on_batch: Any = None
           ) -> tuple[list[IndexRecord], np.ndarray]:
    """Records and vectors for every photo of ``listing_ids``. With ``on_batch`` each batch is
    handed over as it is embedded and nothing is kept (the return value is then empty): records,
    payloads and decoded photos exist for one batch at a time, so the memory a build needs
    beside the index itself does not grow with the catalog."""
    total = sum(len(catalog.listings[listing_id].images) for listing_id in listing_ids)
    kept_records: list[IndexRecord] = []
    kept: list[np.ndarray] = []
    broken: list[str] = []  # once a photo fails, the rest are only decoded, to name them all
    bar = tqdm(total=total, desc="embedding photos", unit="img", disable=not progress)
    try:
        for batch in _record_batches(catalog, listing_ids, batch_size):
            photos = []
            for record in batch:
                try:
                    photos.append(_catalog_photo(catalog, record))
                except ImageDecodeError as exc:
                    broken.append(str(exc))
            bar.update(len(batch))
            if broken:
                continue
            vectors = embedder.embed_images(photos)
            if on_batch is not None:
                on_batch(batch, vectors)
            else:
                kept_records.extend(batch)
                kept.append(np.asarray(vectors, dtype=np.float32))
    finally:
        bar.close()
    if broken:
        raise CatalogPhotoError(broken)
    stacked = np.concatenate(kept) if kept else np.zeros((0, embedder.dim), np.float32)
    return kept_records, stacked


class CatalogPhotoError(ImageDecodeError):
    """Catalog photos that cannot be used, all of them named (each with the ``listings.csv``
    line that lists it), so that one build tells a catalog's owner everything to fix."""

    SHOWN = 20  # problems written out; the rest are counted

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            shown = self.problems[:self.SHOWN]
            message = "\n".join([f"{len(self.problems)} catalog photos cannot be used:",
                                  *(f"  {problem}" for problem in shown)])
            if len(self.problems) > len(shown):
                message += f"\n  ... and {len(self.problems) - len(shown)} more"
        super().__init__(message)


def _catalog_photo(catalog: Catalog, record: IndexRecord) -> Any:
    """A catalog photo decoded; one that cannot be used is named with the ``listings.csv`` line
    that lists it, as the importer names its other problems."""
    try:
        return load_image(catalog.image_path(record.image))
    except ImageDecodeError as exc:
        line = catalog.listings[record.listing_id].line
        raise ImageDecodeError(f"listings.csv:{line}: images: listing {record.listing_id}: "
                               f"{exc}") from exc


def _record_batches(catalog: Catalog, listing_ids: Sequence[str], batch_size: int
                    ) -> Iterator[list[IndexRecord]]:
    """Index records of every photo of ``listing_ids``, ``batch_size`` at a time, made as they
    are needed (a listing's payload once per listing)."""
    batch: list[IndexRecord] = []
    for listing_id in listing_ids:
        payload = _payload(catalog, listing_id)
        for image in catalog.listings[listing_id].images:
            batch.append(IndexRecord(listing_id, image, payload))
            if len(batch) == batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def _payload(catalog: Catalog, listing_id: str) -> dict[str, Any]:
    listing = catalog.listings[listing_id]
    return payload_of(listing, catalog.suppliers.get(listing.supplier_id))


def _listing_fingerprints(listing: Listing, supplier: Supplier | None, catalog: Catalog,
                          digests: ImageDigests | None) -> ListingFingerprint:
    images = images_fingerprint(listing, catalog, digests)
    h = hashlib.sha256(b"listing\0")
    h.update(_row_bytes(listing.as_record()))
    h.update(b"\0supplier\0")
    h.update(_row_bytes(supplier.as_record() if supplier else None))
    h.update(b"\0" + images.encode())
    return ListingFingerprint(listing=h.hexdigest(), images=images)


def _row_bytes(record: Any) -> bytes:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str).encode()


def embedder_version(embedder: ImageEmbedder) -> str:
    """The version an index records for ``embedder`` (its ``version``, else its name)."""
    return str(getattr(embedder, "version", None) or embedder.name)
