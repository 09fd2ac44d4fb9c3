"""OpenCLIP embedder: image and text towers of an ``open_clip`` model.

``pretrained`` is either an open_clip tag (``laion2b_s34b_b79k``, downloaded where a model hub is
reachable) or the path of a local checkpoint file holding the model's ``state_dict``. torch and
open_clip are imported when the model is first used, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence

import numpy as np
from PIL import Image

from retrieval.embedders.base import l2_normalise


class ClipEmbedder:
    def __init__(self, model: str = "ViT-B-32", pretrained: str | None = None,
                 device: str = "auto", batch_size: int = 16) -> None:
        self.model_name = model
        self.pretrained = pretrained
        self.batch_size = batch_size
        self._device = device
        self._model = None
        self._preprocess = None
        self._tokenizer = None
        self._dim: int | None = None
        label = "random-init"
        if pretrained:
            path = Path(pretrained)
            label = f"file-{path.stem}" if path.suffix or path.exists() else pretrained
        self.name = f"clip:{model}:{label}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._load()
        assert self._dim is not None
        return self._dim

    def _load(self) -> None:
        if self._model is not None:
            return
        try:
            import open_clip
            import torch
        except ImportError as exc:  # pragma: no cover - both are declared dependencies
            raise RuntimeError(
                "the clip embedder needs torch and open-clip-torch: pip install open-clip-torch"
            ) from exc
        device = self._device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.pretrained and Path(self.pretrained).suffix and not Path(self.pretrained).exists():
            raise FileNotFoundError(f"CLIP checkpoint not found: {self.pretrained}")
        model, _, preprocess = open_clip.create_model_and_transforms(
            self.model_name, pretrained=self.pretrained or None, device=device)
        model.eval()
        self._model, self._preprocess = model, preprocess
        self._tokenizer = open_clip.get_tokenizer(self.model_name)
        self._torch, self._device = torch, device
        with torch.no_grad():
            probe = preprocess(Image.new("RGB", (32, 32))).unsqueeze(0).to(device)
            self._dim = int(model.encode_image(probe).shape[-1])

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self._load()
        torch = self._torch
        rows = []
        with torch.no_grad():
            for start in range(0, len(images), self.batch_size):
                batch = torch.stack([self._preprocess(img.convert("RGB"))
                                     for img in images[start:start + self.batch_size]])
                rows.append(self._model.encode_image(batch.to(self._device)).float().cpu().numpy())
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.concatenate(rows))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self._load()
        torch = self._torch
        rows = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                tokens = self._tokenizer(list(texts[start:start + self.batch_size]))
                rows.append(self._model.encode_text(tokens.to(self._device)).float().cpu().numpy())
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.concatenate(rows))
