"""Lab 1 reference: a colour-histogram image embedder (HSV joint histogram, Hellinger-scaled)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

SIDE = 128  # photos are resized to SIDE x SIDE before counting colours
BINS = (12, 4, 4)  # hue, saturation, value
GREY_BINS = 8  # value bins for unsaturated pixels (black, white and grey products)
SATURATED = 40  # HSV saturation (0-255) below which a pixel counts as grey


class ColourHistogramEmbedder:
    """How much of each colour a photo holds, as a unit vector."""

    name = "lab1-colour-histogram"
    dim = BINS[0] * BINS[1] * BINS[2] + GREY_BINS

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        rows = np.zeros((len(images), self.dim), dtype=np.float32)
        for number, image in enumerate(images):
            rows[number] = self._histogram(image)
        return rows

    def _histogram(self, image: Image.Image) -> np.ndarray:
        rgb = np.asarray(image.convert("RGB").resize((SIDE, SIDE)), dtype=np.uint8)
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.int32)
        hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
        colour = sat >= SATURATED
        h = hue[colour] * BINS[0] // 180
        s = sat[colour] * BINS[1] // 256
        v = val[colour] * BINS[2] // 256
        joint = np.bincount((h * BINS[1] + s) * BINS[2] + v,
                            minlength=BINS[0] * BINS[1] * BINS[2])
        grey = np.bincount(val[~colour] * GREY_BINS // 256, minlength=GREY_BINS)
        counts = np.concatenate([joint, grey]).astype(np.float32)
        vector = np.sqrt(counts / max(counts.sum(), 1.0))  # Hellinger: tames dominant colours
        return vector / max(float(np.linalg.norm(vector)), 1e-12)
