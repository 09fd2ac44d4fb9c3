"""The hand-built descriptor embedder on a handful of real catalog photos."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from retrieval.embedders.descriptor import DescriptorEmbedder
from retrieval.embedders.projection import Projection, fit_lda, load_projection

REPO = Path(__file__).resolve().parents[1]
LUMA = next((root for root in (REPO / "data" / "catalogs" / "luma",
                               Path("/work/shared/data/catalogs/luma"))
             if (root / "images.csv").is_file() and (root / "images").is_dir()), None)
PRODUCTS = 6

pytestmark = pytest.mark.skipif(LUMA is None, reason="the Luma catalog photos are not present")


@pytest.fixture(scope="module")
def embedder() -> DescriptorEmbedder:
    return DescriptorEmbedder()


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    """The first main-view photo of each of the first PRODUCTS products, one per product."""
    chosen: dict[str, str] = {}
    with open(LUMA / "images.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["view"] == "main" and row["product_id"] not in chosen:
                chosen[row["product_id"]] = row["image"]
            if len(chosen) == PRODUCTS:
                break
    return [Image.open(LUMA / path).convert("RGB") for path in chosen.values()]


def _jpeg(image: Image.Image, quality: int = 40) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _crop(image: Image.Image, fraction: float = 0.15) -> Image.Image:
    w, h = image.size
    dx, dy = int(w * fraction / 2), int(h * fraction / 2)
    return image.crop((dx, dy, w - dx, h - dy))


def _caption(image: Image.Image) -> Image.Image:
    w, h = image.size
    out = Image.new("RGB", (w, h + h // 8), "black")
    out.paste(image, (0, 0))
    ImageDraw.Draw(out).text((10, h + h // 30), "NEW! Free shipping", fill="white")
    return out


def test_shape_dtype_and_unit_norm(embedder, photos):
    vectors = embedder.embed_images(photos)
    assert vectors.shape == (len(photos), embedder.dim)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.name == "descriptor-v4" and embedder.version.startswith("4+")
    assert embedder.dim == 217  # the shipped projection: 218 demo products - 1


def test_raw_descriptor_without_projection(photos):
    raw = DescriptorEmbedder(projection=None)
    assert (raw.name, raw.version, raw.dim) == ("descriptor-v3", "3", 2542)
    vectors = raw.embed_images(photos[:2])
    assert vectors.shape == (2, 2542)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_missing_projection_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        DescriptorEmbedder(projection=tmp_path / "nothing.npz")


def test_lda_finds_the_direction_that_separates_products(tmp_path):
    # three products that differ along axis 0 only; axes 1-2 vary a lot within each product
    rng = np.random.default_rng(0)
    centres = np.array([[-3.0, 0, 0], [0.0, 0, 0], [3.0, 0, 0]])
    labels = np.repeat(["a", "b", "c"], 40)
    rows = centres[np.repeat([0, 1, 2], 40)] + rng.normal(0, [0.3, 5.0, 5.0], (120, 3))
    mean, matrix = fit_lda(rows, labels, reg=1e-3)
    assert matrix.shape == (3, 2)
    leading = matrix[:, 0] / np.linalg.norm(matrix[:, 0])
    assert abs(leading[0]) > 0.99  # the within-product noise axes are ignored
    again = fit_lda(rows, labels, reg=1e-3)
    assert np.array_equal(matrix, again[1])  # refits give the same matrix, signs included
    saved = Projection(mean, matrix, {"note": "test"}).save(tmp_path / "p.npz")
    loaded = load_projection(saved)
    assert np.array_equal(loaded.matrix, matrix) and loaded.info == {"note": "test"}
    projected = DescriptorEmbedder(projection=saved)
    assert projected.dim == 2 and projected.version == f"4+{loaded.digest}"


def test_lda_needs_two_products():
    with pytest.raises(ValueError, match="two products"):
        fit_lda(np.ones((4, 3)), ["a"] * 4)


def test_empty_batch(embedder):
    assert embedder.embed_images([]).shape == (0, embedder.dim)


def test_deterministic(embedder, photos):
    first = embedder.embed_images(photos[:3])
    again = DescriptorEmbedder().embed_images(photos[:3])
    assert np.array_equal(first, again)
    assert np.array_equal(first[1], embedder.embed_images([photos[1]])[0])


@pytest.mark.parametrize("alter", [_jpeg, _crop, _caption], ids=["jpeg40", "crop", "caption"])
def test_altered_copy_is_nearer_than_another_product(embedder, photos, alter):
    originals = embedder.embed_images(photos)
    copies = embedder.embed_images([alter(photo) for photo in photos])
    similarity = copies @ originals.T
    for i in range(len(photos)):
        others = np.delete(similarity[i], i)
        assert similarity[i, i] > others.max(), (i, similarity[i])


def test_degenerate_images_do_not_crash(embedder):
    images = [Image.new("RGB", (640, 480), "white"), Image.new("RGB", (3, 3), (200, 30, 30)),
              Image.new("RGB", (1, 1), "black"), Image.new("RGB", (300, 20), (0, 120, 255))]
    vectors = embedder.embed_images(images)
    assert vectors.shape == (len(images), embedder.dim)
    assert np.isfinite(vectors).all()


def test_grey_and_rgba_inputs(embedder, photos):
    photo = photos[0]
    grey, rgba, palette = photo.convert("L"), photo.convert("RGBA"), photo.convert("P")
    vectors = embedder.embed_images([photo, grey, rgba, palette])
    assert vectors.shape == (4, embedder.dim) and np.isfinite(vectors).all()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[2]) > 0.999  # an opaque alpha channel changes nothing


def test_transparent_cutout_matches_white_backdrop(embedder, photos):
    photo = photos[0]
    rgba = photo.convert("RGBA")
    pixels = np.asarray(rgba).copy()
    white = (pixels[..., :3] > 245).all(axis=2)
    pixels[white] = (0, 0, 0, 0)  # transparent black, as many cut-out PNGs store it
    cutout = Image.fromarray(pixels, "RGBA")
    vectors = embedder.embed_images([photo, cutout, photos[1]])
    assert float(vectors[0] @ vectors[1]) > float(vectors[1] @ vectors[2])
    assert float(vectors[0] @ vectors[1]) > 0.95


def _on_screen(image: Image.Image) -> Image.Image:
    """The photo shown on a display with a dark bezel, on a coloured backdrop, seen at an angle."""
    import cv2

    photo = np.asarray(image.convert("RGB").resize((300, 300)))
    canvas = np.full((480, 480, 3), (150, 70, 40), dtype=np.uint8)
    canvas[70:410, 70:410] = (20, 20, 20)
    canvas[90:390, 90:390] = photo
    src = np.float32([[0, 0], [480, 0], [480, 480], [0, 480]])
    dst = np.float32([[30, 10], [470, 40], [450, 470], [10, 440]])
    warped = cv2.warpPerspective(canvas, cv2.getPerspectiveTransform(src, dst), (480, 480),
                                 borderValue=(150, 70, 40))
    return Image.fromarray(warped)


def test_photo_of_a_screen_is_nearer_than_another_product(embedder, photos):
    originals = embedder.embed_images(photos)
    copies = embedder.embed_images([_on_screen(photo) for photo in photos])
    similarity = copies @ originals.T
    hits = sum(int(similarity[i].argmax() == i) for i in range(len(photos)))
    assert hits >= len(photos) - 1, similarity
