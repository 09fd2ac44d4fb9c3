"""Finding the product by focus in a photo without a plain backdrop (``retrieval.subject``), and
the query encoder searching with its cut-out first and the whole photo as one more view."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from retrieval.embedders.descriptor import WORK_SIDE, DescriptorEmbedder
from retrieval.query import QueryEncoder
from retrieval.search import VIEWS, query_views
from retrieval.subject import subject_cutout
from tests.api_support import QUERY_PHOTO

BOX = (150, 110, 330, 330)  # where the product is pasted, px of the 480 x 400 scene


def _product(size: tuple[int, int]) -> Image.Image:
    """A sharp, textured object: a checkerboard of dark and coloured squares."""
    ys, xs = np.mgrid[0:size[1], 0:size[0]]
    squares = ((xs // 12 + ys // 12) % 2).astype(bool)
    pixels = np.where(squares[..., None], [20, 30, 40], [200, 60, 40]).astype(np.uint8)
    return Image.fromarray(pixels)


def _scene(blur: float = 12.0) -> Image.Image:
    """The object in front of a busy background blurred out of focus (a bokeh backdrop)."""
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    background = Image.fromarray(noise).resize((480, 400), Image.Resampling.NEAREST)
    scene = background.filter(ImageFilter.GaussianBlur(blur))
    scene.paste(_product((BOX[2] - BOX[0], BOX[3] - BOX[1])), BOX[:2])
    return scene


def _box_of(cutout: Image.Image, scene: Image.Image) -> tuple[float, float, float, float]:
    """Bounding box of the cut-out's non-white pixels, in px of the scene."""
    kept = np.asarray(cutout).min(axis=2) < 250
    ys, xs = np.nonzero(kept)
    scale = scene.width / cutout.width
    return xs.min() * scale, ys.min() * scale, (xs.max() + 1) * scale, (ys.max() + 1) * scale


def _area(box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


@pytest.fixture(scope="module")
def embedder() -> DescriptorEmbedder:
    return DescriptorEmbedder()


def test_the_sharp_product_is_cut_out_of_a_blurred_background():
    scene = _scene()
    cutout = subject_cutout(scene)
    assert cutout is not None
    assert max(cutout.size) == WORK_SIDE  # at the descriptor's working size
    box = _box_of(cutout, scene)
    # the product whole, with a margin of background the sharpness window spreads into
    assert box[0] <= BOX[0] + 2 and box[1] <= BOX[1] + 2
    assert box[2] >= BOX[2] - 2 and box[3] >= BOX[3] - 2
    assert _area(box) <= 1.6 * _area(BOX)
    # outside the product the cut-out is white, inside it keeps the product's pixels
    pixels = np.asarray(cutout)
    assert (pixels[:10, :10] == 255).all()
    centre = pixels[pixels.shape[0] * 220 // 400, pixels.shape[1] * 240 // 480]
    assert centre.min() < 250


def test_nothing_is_cut_from_a_studio_photo_or_a_frame_sharp_everywhere():
    assert subject_cutout(Image.open(QUERY_PHOTO)) is None  # a plain backdrop: left alone
    rng = np.random.default_rng(5)
    texture = Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8))
    assert subject_cutout(texture) is None  # a close-up: nothing stands out
    assert subject_cutout(Image.new("RGB", (200, 200), (90, 120, 160))) is None  # flat


def test_encoder_leads_with_the_cutout_and_keeps_the_whole_photo_as_a_view(embedder):
    scene = _scene()
    query = QueryEncoder(embedder).encode(scene)
    cutout = subject_cutout(scene)
    assert query.vectors.shape == (1 + len(VIEWS) + 1, embedder.dim)
    assert np.array_equal(query.vector, embedder.embed_images([cutout])[0])
    assert np.array_equal(query.view_vectors[:-1], embedder.embed_images(query_views(scene)))
    assert np.array_equal(query.view_vectors[-1], embedder.embed_images([scene])[0])

    plain = QueryEncoder(embedder, subject=False).encode(scene)
    assert plain.vectors.shape == (1 + len(VIEWS), embedder.dim)
    assert np.array_equal(plain.vector, embedder.embed_images([scene])[0])


def test_encoder_is_unchanged_for_a_photo_on_a_plain_backdrop(embedder):
    photo = Image.open(QUERY_PHOTO).convert("RGB")
    on = QueryEncoder(embedder).encode(photo)
    off = QueryEncoder(embedder, subject=False).encode(photo)
    assert np.array_equal(on.vectors, off.vectors)
