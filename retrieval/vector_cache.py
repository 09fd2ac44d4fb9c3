"""Text embeddings kept on disk between start-ups, keyed by the texts and the model.

Embedding a fixed list of texts (the marketplace's category names) with MiniLM costs seconds at
every start-up and gives the same vectors each time. The first start-up writes them to
``<folder>/<label>.<embedder name>.npz`` with a key, the SHA-256 of the embedder's name and the
texts in order; later start-ups read the file back when its key matches and embed afresh (and
rewrite it) when the texts or the model changed. The vectors are stored as computed (float32),
so a search answers the same whether they came from the file or the model. The file is written
beside its final name and renamed into place; a folder that cannot be written only costs the
saving. Vectors derived from texts (the mean embedding of each marketplace category's listing
titles) are kept the same way (:func:`cached_vectors`), and a copy bundled beside the data they
come from is read before the cache, so that a fresh install computes nothing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def text_key(embedder_name: str, texts: Sequence[str]) -> str:
    """What the vectors were computed from: the embedder's name and every text, in order."""
    digest = hashlib.sha256(embedder_name.encode("utf-8"))
    for text in texts:
        digest.update(b"\0" + text.encode("utf-8"))
    return digest.hexdigest()


def cache_path(folder: str | Path, label: str, embedder_name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in embedder_name)
    return Path(folder) / f"{label}.{safe}.npz"


def cached_text_vectors(embedder: Any, texts: Sequence[str], folder: str | Path | None,
                        label: str) -> np.ndarray:
    """``embedder.embed_texts(texts)`` as float32, read from the cache in ``folder`` when it
    holds them for these texts and this embedder (``folder=None``: no cache)."""
    texts = list(texts)
    name = getattr(embedder, "name", type(embedder).__name__)
    return cached_vectors(text_key(name, texts),
                          lambda: np.asarray(embedder.embed_texts(texts), dtype=np.float32),
                          folder, label, name)


def cached_vectors(key: str, compute: Callable[[], np.ndarray], folder: str | Path | None,
                   label: str, embedder_name: str, shipped: Path | None = None) -> np.ndarray:
    """``compute()`` as float32, unless a file holds the vectors for ``key``: first ``shipped``
    (a copy bundled beside the data, only ever read), then the cache in ``folder``, which is
    written when the vectors had to be computed (``folder=None``: no cache)."""
    path = cache_path(folder, label, embedder_name) if folder is not None else None
    for candidate in (shipped, path):
        stored = _read(candidate, key) if candidate is not None else None
        if stored is not None:
            return stored
    vectors = np.asarray(compute(), dtype=np.float32)
    if path is not None:
        write_vectors(path, vectors, key)
    return vectors


def _read(path: Path, key: str) -> np.ndarray | None:
    try:
        with np.load(path) as stored:
            if str(stored["key"]) == key:
                return stored["vectors"].astype(np.float32, copy=False)
    except (OSError, KeyError, ValueError):
        pass  # missing, unreadable or from another version: computed afresh
    return None


def write_vectors(path: Path, vectors: np.ndarray, key: str) -> None:
    """Write ``vectors`` under ``key`` to ``path``, atomically; a place that cannot be written
    only costs the saving."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz",
                                             dir=path.parent)
    except OSError:
        return  # a read-only place: the vectors are embedded again next time
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, vectors=vectors, key=np.array(key))
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
