"""Image index over a supplier catalog: one vector per listing photo, searched by inner product
(cosine similarity: every embedder returns unit-length rows), answered per listing.

One interface, :class:`VectorIndex`, and two backends behind it:

- ``faiss`` (:class:`~retrieval.faiss_index.FaissIndex`): in process, exact below 50,000 photos
  and HNSW above; the default for one machine.
- ``qdrant`` (:class:`~retrieval.qdrant_index.QdrantIndex`): a Qdrant collection, in process
  (local mode) or on a server or cluster (``url=``), for catalogs past one machine.

Every vector carries its listing's payload (:func:`~retrieval.filters.payload_of`) and a search
may take a :class:`~retrieval.filters.SearchFilter`, applied inside the search. Several photos
belong to one listing, so hits are aggregated per listing, scored by the best photo.

On disk an index is a folder whose ``meta.json`` names the backend, the embedder (name and
version), the dimension, the counts, the catalog fingerprint and one fingerprint per listing
(what :func:`retrieval.build.update_index` compares to re-embed only what changed). ``save``
writes a complete new folder beside the target and swaps it in with renames, so a failed or
interrupted save never leaves a half-written index and an existing index stays untouched until
the new one is complete. :func:`open_index` (or ``ImageIndex.load``) opens any saved index;
:func:`create_index` makes an empty one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from retrieval.filters import SearchFilter, canonical_payload

if TYPE_CHECKING:
    from retrieval.faiss_index import ImageIndex

FORMAT_VERSION = 2
META_FILE = "meta.json"
BACKENDS = ("faiss", "qdrant")
BUILD_HINT = "build one with `sourcing index build`"


class IndexMismatchError(ValueError):
    """The index on disk was built with another embedder, dimension or format than expected."""


class IndexNotFoundError(FileNotFoundError):
    """No index at the given folder (or its Qdrant collection is gone)."""


class IndexUnavailableError(ConnectionError):
    """The index lives on a server that cannot be reached or refuses the client (wrong URL,
    server down, bad API key). Not an IndexNotFoundError: nothing is known to be missing, so
    nothing may be rebuilt because of it."""


@dataclass(frozen=True)
class IndexEntry:
    """One photo vector: which listing it belongs to and the photo's path in the catalog."""

    listing_id: str
    image: str


@dataclass(frozen=True)
class IndexRecord:
    """A photo vector to add, with its filterable payload (see ``retrieval.filters.payload_of``).
    ``listing_id`` and ``image`` override those keys of ``payload``."""

    listing_id: str
    image: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    def full_payload(self) -> dict[str, Any]:
        """The payload as stored: canonical case, with this record's listing and image."""
        return {**canonical_payload(self.payload), "listing_id": self.listing_id,
                "image": self.image}


class ListingHit(NamedTuple):
    """A listing found by search: its best-matching photo and that photo's cosine similarity.

    A named tuple rather than a frozen dataclass: a search makes one per listing it returns
    (hundreds when the re-ranker looks deep), and a tuple is made in half the time."""

    listing_id: str
    score: float
    image: str


@dataclass(frozen=True)
class ListingFingerprint:
    """What a listing's vectors and payload were computed from (sha256 hex digests):
    ``listing`` covers its row, its supplier's row and its photos; ``images`` only the photos
    (paths and bytes), so a changed row with the same photos only re-writes the payload."""

    listing: str
    images: str


class VectorIndex(ABC):
    """A photo-vector index answering per listing. Backends implement the abstract methods."""

    backend: ClassVar[str | None] = None

    def __init__(self, embedder_name: str, dim: int, info: dict[str, Any] | None = None,
                 embedder_version: str | None = None) -> None:
        if dim <= 0:
            raise ValueError(f"dimension must be positive, got {dim}")
        self.embedder_name = embedder_name
        self.embedder_version = embedder_version or embedder_name
        self.dim = int(dim)
        self.info: dict[str, Any] = dict(info or {})
        # listing id -> what its vectors were computed from; filled by build/update
        self.fingerprints: dict[str, ListingFingerprint] = {}
        self.catalog_fingerprint: str | None = None

    # -- the interface -------------------------------------------------------------------------

    @property
    @abstractmethod
    def index_type(self) -> str:
        """The search structure in use (``flat``, ``hnsw``, ``ivf``, ``exact``...)."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of photo vectors."""

    @abstractmethod
    def add(self, records: Sequence[IndexRecord | IndexEntry], vectors: np.ndarray) -> None:
        """Add one vector per record (``(len(records), dim)`` float32, unit rows). Adding a
        (listing, image) pair that is already indexed replaces it."""

    @abstractmethod
    def delete(self, listing_ids: Iterable[str]) -> int:
        """Remove every photo of the given listings; returns the number of vectors removed."""

    @abstractmethod
    def update_payloads(self, payloads: Mapping[str, Mapping[str, Any]]) -> int:
        """Overwrite the payload fields of every photo of each listing (``listing_id`` ->
        payload; ``image`` is left alone); returns the number of vectors touched."""

    @abstractmethod
    def search(self, vector: np.ndarray, k: int = 10,
               filter: SearchFilter | None = None) -> list[ListingHit]:
        """The ``k`` best listings that pass ``filter``, each scored by its best photo, best
        first (ties by listing id). Fewer only when fewer listings pass."""

    def search_batch(self, vectors: np.ndarray, k: int = 10,
                     filter: SearchFilter | None = None) -> list[list[ListingHit]]:
        """``search`` for each row of ``vectors`` (``(n, dim)``), with the same answers; a
        backend overrides it when it can ask its structure once for all rows."""
        return [self.search(vector, k=k, filter=filter) for vector in vectors]

    @abstractmethod
    def listing_scores(self, vector: np.ndarray,
                       listing_ids: Iterable[str]) -> dict[str, ListingHit]:
        """Exact best-photo similarity of the query to each of ``listing_ids`` (those indexed)."""

    def group_scores(self, vector: np.ndarray, listing_ids: Iterable[str]) -> dict[str, float]:
        """Mean similarity of the query to every photo of each listing's *product* (all
        listings sharing its ``product_id``; the listing's own photos when it has none), for
        the given listings: a product seen from several sides scores on all its photos, not
        only on the one that happens to look most like the query (``retrieval.search``)."""
        raise NotImplementedError(f"{type(self).__name__} does not score product groups")

    @abstractmethod
    def listings(self) -> set[str]:
        """Ids of the listings that have at least one vector."""

    @abstractmethod
    def save(self, folder: str | Path) -> Path:
        """Write the index to ``folder`` atomically (see the module docstring)."""

    @classmethod
    @abstractmethod
    def _open(cls, folder: Path, meta: dict[str, Any], **options: Any) -> VectorIndex:
        """Open the backend's data for a folder whose ``meta.json`` is already checked."""

    def payload(self, listing_id: str) -> dict[str, Any] | None:
        """The payload stored with the listing's first photo, or ``None`` (for inspection)."""
        return None

    def compact(self) -> None:
        """Settle the search structure (drop tombstones, pick the index type); may be slow."""
        return None

    def discard(self) -> None:
        """Throw away what a failed build wrote outside this process (nothing by default)."""
        return None

    def close(self) -> None:
        """Release clients and files; the index must not be used afterwards."""
        return None

    def __enter__(self) -> VectorIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loading -------------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: str | Path, expected_embedder: str | None = None,
             expected_dim: int | None = None, *, expected_version: str | None = None,
             qdrant_url: str | None = None, qdrant_api_key: Any = None,
             **options: Any) -> VectorIndex:
        """Open the index saved in ``folder``, checking it against the configured embedder.

        Called on ``VectorIndex`` (or ``ImageIndex``) it opens whichever backend the folder
        holds; called on a backend class it refuses a folder of another backend.
        ``qdrant_url``/``qdrant_api_key`` reach a Qdrant server index (the URL overrides the
        one in ``meta.json``) and are ignored for other backends; ``options`` go to the backend
        (e.g. ``ef_search`` or ``nprobe`` for FAISS).
        """
        folder = Path(folder)
        meta = read_meta(folder)
        check_meta(meta, folder, expected_embedder, expected_dim, expected_version)
        backend = meta.get("backend")
        if cls.backend is not None and backend != cls.backend:
            raise IndexMismatchError(f"index at {folder} is a {backend} index, not {cls.backend}")
        if backend == "qdrant":
            options = {"url": qdrant_url, "api_key": qdrant_api_key, **options}
        index = backend_class(backend)._open(folder, meta, **options)
        index.info = dict(meta.get("info") or {})
        index.embedder_version = meta.get("embedder_version") or index.embedder_name
        index.catalog_fingerprint = meta.get("catalog_fingerprint")
        index.fingerprints = {lid: ListingFingerprint(*pair) for lid, pair in
                              (meta.get("listing_fingerprints") or {}).items()}
        return index

    # -- helpers for backends ------------------------------------------------------------------

    def _meta(self, **backend_fields: Any) -> dict[str, Any]:
        """``meta.json`` contents common to every backend, plus ``backend_fields``."""
        return {
            "format_version": FORMAT_VERSION,
            "backend": self.backend,
            "index_type": self.index_type,
            "embedder": self.embedder_name,
            "embedder_version": self.embedder_version,
            "dim": self.dim,
            "count": len(self),
            "listing_count": len(self.listings()),
            "catalog_fingerprint": self.catalog_fingerprint,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "info": self.info,
            **backend_fields,
            "listing_fingerprints": {lid: [fp.listing, fp.images]
                                     for lid, fp in sorted(self.fingerprints.items())},
        }

    def _query(self, vector: np.ndarray) -> np.ndarray:
        """The query as a ``(1, dim)`` contiguous float32 row."""
        query = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        if query.shape[1] != self.dim:
            raise IndexMismatchError(f"query has dimension {query.shape[1]}, index has {self.dim}")
        return query

    def _check_vectors(self, records: Sequence[Any], vectors: np.ndarray | None) -> np.ndarray:
        rows = np.ascontiguousarray(np.asarray(vectors if vectors is not None else [],
                                               dtype=np.float32))
        if len(records) == 0 and rows.size == 0:
            return np.zeros((0, self.dim), np.float32)
        if rows.ndim != 2 or rows.shape != (len(records), self.dim):
            raise ValueError(f"expected vectors of shape ({len(records)}, {self.dim}), "
                             f"got {rows.shape}")
        return rows


def as_record(entry: IndexRecord | IndexEntry) -> IndexRecord:
    """Records pass through; a bare :class:`IndexEntry` gets an empty payload."""
    if isinstance(entry, IndexRecord):
        return entry
    return IndexRecord(entry.listing_id, entry.image)


def best_per_listing(listing_ids: Sequence[str], images: Sequence[str],
                     scores: np.ndarray) -> dict[str, ListingHit]:
    """Each listing's best photo among parallel (listing, image, score) rows."""
    best: dict[str, ListingHit] = {}
    for listing_id, image, score in zip(listing_ids, images, scores.tolist()):
        hit = best.get(listing_id)
        if hit is None or score > hit.score:
            best[listing_id] = ListingHit(listing_id, float(score), image)
    return best


def group_means(listing_ids: Sequence[str], product_ids: Sequence[str | None],
                scores: np.ndarray, wanted: Iterable[str]) -> dict[str, float]:
    """Per wanted listing, the mean score over the rows of its group, from parallel (listing,
    product, score) rows: the group is the listing's product, or the listing alone without one."""
    product_of: dict[str, str | None] = {}
    totals: dict[tuple[str, str], list[float]] = {}
    for listing_id, product_id, score in zip(listing_ids, product_ids, scores.tolist()):
        product_of.setdefault(listing_id, product_id)
        key = ("product", product_id) if product_id else ("listing", listing_id)
        total = totals.setdefault(key, [0.0, 0])
        total[0] += score
        total[1] += 1
    out = {}
    for listing_id in wanted:
        if listing_id not in product_of:
            continue
        product_id = product_of[listing_id]
        total, count = totals[("product", product_id) if product_id else ("listing", listing_id)]
        out[listing_id] = total / count
    return out


def ranked(hits: Iterable[ListingHit], k: int) -> list[ListingHit]:
    """Best first, ties broken by listing id so that every backend returns the same order."""
    return sorted(hits, key=lambda hit: (-hit.score, hit.listing_id))[:k]


# -- folders and meta ----------------------------------------------------------------------------


def read_meta(folder: Path) -> dict[str, Any]:
    meta_path = folder / META_FILE
    if not meta_path.exists():
        raise IndexNotFoundError(f"no index at {folder}: {BUILD_HINT}")
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise IndexMismatchError(f"index at {folder} has an unreadable {META_FILE} ({exc}); "
                                 "rebuild it with `sourcing index build`") from exc


def check_meta(meta: dict[str, Any], folder: Path, expected_embedder: str | None,
               expected_dim: int | None, expected_version: str | None = None) -> None:
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index at {folder} has format version {version}, this version reads "
            f"{FORMAT_VERSION}; rebuild it with `sourcing index build`")
    if meta.get("backend") not in BACKENDS:
        raise IndexMismatchError(f"index at {folder} names an unknown backend "
                                 f"{meta.get('backend')!r}; known: {', '.join(BACKENDS)}")
    if expected_embedder is not None and meta["embedder"] != expected_embedder:
        raise IndexMismatchError(
            f"index at {folder} was built with embedder {meta['embedder']!r}, but the "
            f"configured embedder is {expected_embedder!r}; rebuild it with "
            "`sourcing index build` or configure the matching embedder")
    if expected_version is not None and meta.get("embedder_version") != expected_version:
        raise IndexMismatchError(
            f"index at {folder} was built with {meta['embedder']!r} version "
            f"{meta.get('embedder_version')!r}, but the configured embedder is version "
            f"{expected_version!r} (for example another descriptor projection); rebuild it with "
            "`sourcing index build`")
    if expected_dim is not None and meta["dim"] != expected_dim:
        raise IndexMismatchError(
            f"index at {folder} has dimension {meta['dim']}, the embedder gives "
            f"{expected_dim}; rebuild the index")


def write_folder(folder: str | Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(staging)`` on a fresh folder beside ``folder``, then swap it in."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=folder.parent))
    try:
        write(staging)
        # mkdtemp makes the folder 0700: an index built by a deploy user must stay readable by
        # a server running as another one
        os.chmod(staging, shared_mode(0o755))
        _swap_in(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def shared_mode(mode: int) -> int:
    """``mode`` (0o755 for a folder, 0o644 for a file) less the process umask: what a file
    written in place would get, for the ones staged with ``tempfile`` (0700 / 0600)."""
    return mode & ~_umask()


def _umask() -> int:
    try:  # Linux: read it, without the set-and-restore race of os.umask in a threaded server
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    (folder / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def _swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with renames; the old folder is removed only after."""
    if not target.exists():
        os.replace(staging, target)
        return
    retired = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(retired, ignore_errors=True)
    os.replace(target, retired)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


# -- factory -------------------------------------------------------------------------------------


def backend_class(backend: str) -> type[VectorIndex]:
    if backend == "faiss":
        from retrieval.faiss_index import FaissIndex

        return FaissIndex
    if backend == "qdrant":
        from retrieval.qdrant_index import QdrantIndex

        return QdrantIndex
    raise ValueError(f"unknown index backend {backend!r}; known: {', '.join(BACKENDS)}")


def create_index(kind: str, embedder_name: str, dim: int, **options: Any) -> VectorIndex:
    """An empty index of backend ``kind`` (``faiss`` or ``qdrant``).

    FAISS options: ``index_type`` (``auto``/``flat``/``hnsw``/``ivf``), ``ef_search``,
    ``nprobe``... Qdrant options: ``url``, ``api_key``, ``collection``, ``shard_number``,
    ``replication_factor``. Both take ``info`` and ``embedder_version``.
    """
    return backend_class(kind)(embedder_name, dim, **options)


def open_index(folder: str | Path, expected_embedder: str | None = None,
               expected_dim: int | None = None, **options: Any) -> VectorIndex:
    """Open the index saved in ``folder``, whichever backend it uses (see
    :meth:`VectorIndex.load` for ``qdrant_url``, ``qdrant_api_key`` and backend options)."""
    return VectorIndex.load(folder, expected_embedder, expected_dim, **options)


def __getattr__(name: str) -> Any:
    # ImageIndex (the FAISS index under its historical name) lives with the FAISS backend;
    # resolved lazily so that importing this module does not import faiss
    if name == "ImageIndex":
        from retrieval.faiss_index import ImageIndex

        return ImageIndex
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BACKENDS", "FORMAT_VERSION", "ImageIndex", "IndexEntry", "IndexMismatchError",
    "IndexNotFoundError", "IndexRecord", "IndexUnavailableError", "ListingFingerprint",
    "ListingHit", "SearchFilter", "VectorIndex", "create_index", "open_index",
]
