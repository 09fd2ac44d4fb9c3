"""Lab 1, your image embedder. Read labs/lab1_index/README.md first.

An embedder turns photos into vectors; the index then finds the catalog photos whose vectors
are closest to a query's. The project's interface is ``retrieval.embedders.base.ImageEmbedder``:
a ``name`` (str), a ``dim`` (int) and ``embed_images(images) -> (len(images), dim)`` float32
rows of unit length. Check your work with ``sourcing lab check 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image


class ColourHistogramEmbedder:
    """How much of each colour a photo holds, as a unit vector."""

    name = "lab1-colour-histogram"
    # TODO (README step 1): the length of your vectors, e.g. the number of histogram bins.
    dim: int | None = None

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        # TODO (README step 2): one row per image: a colour histogram of the photo, divided by
        # its L2 norm, as float32. Hints: `np.asarray(image.convert("RGB").resize((128, 128)))`
        # gives the pixels; `np.bincount` counts bin indices; `cv2.cvtColor(..., COLOR_RGB2HSV)`
        # converts to hue / saturation / value.
        raise NotImplementedError("TODO (README step 2): embed_images is not written yet")
