"""Image index over a supplier catalog: one vector per listing photo, searched by inner product.

On disk an index is a folder with ``vectors.faiss`` and ``meta.json`` (embedder name, dimension,
one entry per vector: listing id and image path). ``save`` writes a complete new folder beside
the target and swaps it in with renames, so a failed or interrupted build never leaves a
half-written index and an existing index stays untouched until the new one is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1


class IndexMismatchError(ValueError):
    """The index on disk was built with another embedder or dimension than the one configured."""


class IndexNotFoundError(FileNotFoundError):
    """No index at the given folder."""


@dataclass(frozen=True)
class IndexEntry:
    listing_id: str
    image: str


@dataclass(frozen=True)
class ListingHit:
    """A listing found by search: its best-matching photo and that photo's cosine similarity."""

    listing_id: str
    score: float
    image: str


class ImageIndex:
    """Exact inner-product search (FAISS ``IndexFlatIP``) with listing-level aggregation."""

    def __init__(self, embedder_name: str, dim: int, entries: list[IndexEntry] | None = None,
                 vectors: np.ndarray | None = None, info: dict[str, Any] | None = None) -> None:
        import faiss

        self.embedder_name = embedder_name
        self.dim = dim
        self.entries: list[IndexEntry] = []
        self.info = dict(info or {})
        self._faiss = faiss.IndexFlatIP(dim)
        if entries:
            self.add(entries, vectors)

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, entries: list[IndexEntry], vectors: np.ndarray | None) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(entries), self.dim):
            raise ValueError(f"expected vectors of shape ({len(entries)}, {self.dim}), "
                             f"got {vectors.shape}")
        self._faiss.add(vectors)
        self.entries.extend(entries)

    def search(self, vector: np.ndarray, k: int = 10) -> list[ListingHit]:
        """The ``k`` best listings for one query vector, each scored by its best photo."""
        if not self.entries:
            return []
        query = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        if query.shape[1] != self.dim:
            raise IndexMismatchError(f"query has dimension {query.shape[1]}, index has {self.dim}")
        # several photos may belong to one listing: over-fetch, then keep each listing's best
        fetch = min(len(self.entries), max(k * 8, 64))
        scores, rows = self._faiss.search(query, fetch)
        best: dict[str, ListingHit] = {}
        for score, row in zip(scores[0], rows[0]):
            if row < 0:
                continue
            entry = self.entries[row]
            if entry.listing_id not in best:
                best[entry.listing_id] = ListingHit(entry.listing_id, float(score), entry.image)
        return sorted(best.values(), key=lambda hit: -hit.score)[:k]

    def listing_scores(self, vector: np.ndarray, listing_ids: set[str]) -> dict[str, ListingHit]:
        """Exact best-photo similarity of the query to each of ``listing_ids`` (those indexed)."""
        query = np.asarray(vector, dtype=np.float32).ravel()
        best: dict[str, ListingHit] = {}
        for row, entry in enumerate(self.entries):
            if entry.listing_id not in listing_ids:
                continue
            score = float(self._faiss.reconstruct(row) @ query)
            if entry.listing_id not in best or score > best[entry.listing_id].score:
                best[entry.listing_id] = ListingHit(entry.listing_id, score, entry.image)
        return best

    # -- persistence ---------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        import faiss

        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=folder.parent))
        try:
            faiss.write_index(self._faiss, str(staging / "vectors.faiss"))
            meta = {
                "format_version": FORMAT_VERSION,
                "embedder": self.embedder_name,
                "dim": self.dim,
                "count": len(self.entries),
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                **self.info,
                "entries": [[e.listing_id, e.image] for e in self.entries],
            }
            (staging / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            _swap_in(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return folder

    @classmethod
    def load(cls, folder: str | Path, expected_embedder: str | None = None,
             expected_dim: int | None = None) -> ImageIndex:
        import faiss

        folder = Path(folder)
        meta_path, vectors_path = folder / "meta.json", folder / "vectors.faiss"
        if not meta_path.exists() or not vectors_path.exists():
            raise IndexNotFoundError(
                f"no index at {folder}: build one with `sourcing index build`")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if expected_embedder is not None and meta["embedder"] != expected_embedder:
            raise IndexMismatchError(
                f"index at {folder} was built with embedder {meta['embedder']!r}, but the "
                f"configured embedder is {expected_embedder!r}; rebuild it with "
                "`sourcing index build` or configure the matching embedder")
        if expected_dim is not None and meta["dim"] != expected_dim:
            raise IndexMismatchError(
                f"index at {folder} has dimension {meta['dim']}, the embedder gives "
                f"{expected_dim}; rebuild the index")
        index = cls(meta["embedder"], int(meta["dim"]),
                    info={k: v for k, v in meta.items()
                          if k not in {"entries", "embedder", "dim", "count"}})
        index._faiss = faiss.read_index(str(vectors_path))
        index.entries = [IndexEntry(listing_id, image) for listing_id, image in meta["entries"]]
        if index._faiss.ntotal != len(index.entries) or index._faiss.d != index.dim:
            raise IndexMismatchError(f"index at {folder} is inconsistent: "
                                     f"{index._faiss.ntotal} vectors, {len(index.entries)} entries")
        return index


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
