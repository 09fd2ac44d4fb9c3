"""Encoding a query photo: from its bytes to the decoded photo and the vectors image search needs.

This stage owns everything costly about a photo query before the index is asked: the decode
(truncation check, EXIF orientation, JPEGs decoded at the scale the pipeline needs), the crops
searched beside the whole photo (``retrieval.search.VIEWS``) and their embedding. Callers do the
cheap checks before it (``api.uploads.check_header``: byte size, format, pixel count) and the
search after it (``retrieval.search.search_images`` with ``view_vectors``), so the API route,
the intake node and the CLI share one implementation, and the stage can be replaced as one piece
(``Services.query_encoder``: a test or a benchmark of the API layer hands in fixed vectors).

**Draft decoding.** A JPEG is decoded straight at 1/2, 1/4 or 1/8 of its size when both sides
stay at least ``DRAFT_SIDE`` px: the smallest view keeps half of each side, and the descriptor
works at ``WORK_SIDE`` (256) px, so 512 px lose nothing it looks at; the re-ranker's local
features need 320 px on the longer side. Only photos of 1,024 px and more on both sides are
affected (the demo's query photos, at most 640 px, decode exactly as before).

**The product's cut-out.** A photo without a plain backdrop (a product in a room, on clutter,
before a blurred background) is also searched by its sharp region painted on white
(``retrieval.subject``): that cut-out's vector leads (``EncodedQuery.vector``: the one the
whole-product score compares), and the whole photo's joins the views. ``subject=False`` turns
it off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from retrieval.images import MAX_BYTES, MAX_PIXELS, decode_image
from retrieval.search import VIEWS, query_views
from retrieval.subject import subject_cutout

DRAFT_SIDE = 512  # px both sides of a JPEG keep when decoded at a reduced scale (see above)


@dataclass(frozen=True)
class EncodedQuery:
    """A query photo ready for search. ``image`` is the decoded photo (what the re-ranker
    compares with catalog photos), ``None`` when the encoder does not decode (a stand-in);
    ``vectors`` holds the whole photo's embedding first, then one row per view."""

    image: Image.Image | None
    vectors: np.ndarray  # (1 + views, dim) float32, unit rows

    @property
    def vector(self) -> np.ndarray:
        """The photo's main embedding: the whole photo's, or its product's cut-out's when the
        photo has no plain backdrop and a sharp region stands out (``retrieval.subject``)."""
        return self.vectors[0]

    @property
    def view_vectors(self) -> np.ndarray:
        """The views' embeddings, ``(views, dim)``: the crops', then the whole photo's when the
        cut-out leads; none for a photo too small to crop (and without a cut-out)."""
        return self.vectors[1:]


class QueryEncoder:
    """Decodes a query photo, crops its views and embeds them with the index's embedder."""

    def __init__(self, embedder: Any, views: Sequence[tuple[float, float, float]] = VIEWS,
                 draft_side: int | None = DRAFT_SIDE, max_pixels: int = MAX_PIXELS,
                 max_bytes: int = MAX_BYTES, subject: bool = True) -> None:
        self.embedder = embedder
        self.views = tuple(views)
        self.subject = subject
        self.draft_side = draft_side
        self.max_pixels, self.max_bytes = max_pixels, max_bytes

    def decode(self, data: bytes, name: str = "image") -> Image.Image:
        """The photo decoded (RGB, EXIF orientation applied, JPEG drafted); raises
        ``retrieval.images.ImageDecodeError`` for a file that cannot be used."""
        return decode_image(data, name=name, max_pixels=self.max_pixels,
                            max_bytes=self.max_bytes, draft_side=self.draft_side)

    def encode(self, photo: bytes | Image.Image, name: str = "image") -> EncodedQuery:
        """Encode uploaded bytes (decoded here) or an already decoded photo."""
        image = photo if isinstance(photo, Image.Image) else self.decode(photo, name)
        # the whole photo alone, the views together: the same calls as search always made,
        # so the vectors are bit for bit those of an embedder called one photo at a time
        whole = np.asarray(self.embedder.embed_images([image]), dtype=np.float32)
        crops = query_views(image, self.views) if self.views else []
        rows = [whole]
        if crops:
            rows.append(np.asarray(self.embedder.embed_images(crops), dtype=np.float32))
        cutout = subject_cutout(image) if self.subject else None
        if cutout is not None:  # the product's cut-out leads; the whole photo becomes a view
            rows = [np.asarray(self.embedder.embed_images([cutout]), dtype=np.float32),
                    *rows[1:], whole]
        return EncodedQuery(image, np.concatenate(rows))
