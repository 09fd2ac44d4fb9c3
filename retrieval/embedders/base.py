"""Embedder interfaces. Every embedder returns float32 rows of unit length, so inner product is
cosine similarity, and carries a ``name`` that an index records and checks at load time."""

from __future__ import annotations

from typing import Protocol, runtime_checkable
from collections.abc import Sequence

import numpy as np
from PIL import Image


@runtime_checkable
class ImageEmbedder(Protocol):
    name: str
    dim: int

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(len(images), dim) float32, L2-normalised rows."""
        ...


@runtime_checkable
class TextEmbedder(Protocol):
    name: str
    dim: int

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised rows."""
        ...


def l2_normalise(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)
