"""The query encoder (decode, views, embedding as one stage) and the image-search route's seam:
the route does only the cheap checks before the encoder, which a test can replace."""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from retrieval.embedders.descriptor import WORK_SIDE, DescriptorEmbedder, working_rgb
from retrieval.images import ImageDecodeError, decode_image
from retrieval.query import DRAFT_SIDE, EncodedQuery, QueryEncoder
from retrieval.rerank import SIDE as RERANK_SIDE
from retrieval.search import VIEWS, query_views
from tests.api_support import QUERY_PHOTO


@pytest.fixture(scope="module")
def embedder() -> DescriptorEmbedder:
    return DescriptorEmbedder()


def _jpeg(image: Image.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **save)
    return buffer.getvalue()


def _large_photo() -> bytes:
    """The query photo enlarged to a phone camera's size (2,064 x 2,560 px)."""
    photo = Image.open(QUERY_PHOTO).convert("RGB")
    return _jpeg(photo.resize((photo.width * 4, photo.height * 4), Image.Resampling.BICUBIC),
                 quality=92)


def test_vectors_are_the_embedders_on_the_photo_and_its_views(embedder):
    data = QUERY_PHOTO.read_bytes()
    query = QueryEncoder(embedder).encode(data, "query.jpg")
    image = decode_image(data)
    assert query.image.size == image.size
    assert np.array_equal(np.asarray(query.image), np.asarray(image))  # no draft at this size
    assert query.vectors.shape == (1 + len(VIEWS), embedder.dim)
    assert np.array_equal(query.vector, embedder.embed_images([image])[0])
    assert np.array_equal(query.view_vectors, embedder.embed_images(query_views(image)))
    again = QueryEncoder(embedder).encode(image)  # an already decoded photo
    assert np.array_equal(again.vectors, query.vectors)


def test_no_views_for_a_tiny_photo_or_when_turned_off(embedder):
    tiny = QueryEncoder(embedder).encode(Image.new("RGB", (20, 20), "red"))
    assert tiny.vectors.shape == (1, embedder.dim) and tiny.view_vectors.shape[0] == 0
    whole_only = QueryEncoder(embedder, views=()).encode(QUERY_PHOTO.read_bytes())
    assert whole_only.vectors.shape == (1, embedder.dim)


@pytest.mark.parametrize("size", [(2000, 1), (1, 2000), (3000, 3), (10_000, 3)])
def test_a_very_wide_or_tall_photo_is_encoded_by_its_colours(embedder, size):
    """A side that rounds to 0 px when the photo is shrunk used to crash OpenCV's resize; the
    strip is searched, and still looks like its colour rather than like the white padding."""
    assert working_rgb(Image.new("RGB", size)).shape[:2] == tuple(
        max(1, round(side * WORK_SIDE / max(size))) for side in size[::-1])
    query = QueryEncoder(embedder).encode(Image.new("RGB", size, (200, 30, 30)))
    assert query.vectors.shape == (1, embedder.dim)  # too thin for views or a cut-out
    assert np.isfinite(query.vectors).all()
    assert np.linalg.norm(query.vector) == pytest.approx(1.0, abs=1e-5)
    red, blue = embedder.embed_images([Image.new("RGB", (600, 40), (200, 30, 30)),
                                       Image.new("RGB", (600, 40), (30, 30, 200))])
    assert float(query.vector @ red) > float(query.vector @ blue) + 0.1


def test_draft_never_goes_below_what_the_embedder_views_and_reranker_need():
    smallest_view = min(share for share, _, _ in VIEWS)
    assert DRAFT_SIDE >= math.ceil(WORK_SIDE / smallest_view)
    assert DRAFT_SIDE >= RERANK_SIDE


def test_large_jpeg_is_decoded_at_a_reduced_scale_with_nearly_the_same_vectors(embedder):
    data = _large_photo()
    drafted = QueryEncoder(embedder).encode(data)
    full = QueryEncoder(embedder, draft_side=None).encode(data)
    assert full.image.size == (2064, 2560)
    assert drafted.image.size == (516, 640)  # a quarter: both sides still >= DRAFT_SIDE
    assert min(drafted.image.size) >= DRAFT_SIDE
    cosines = (drafted.vectors * full.vectors).sum(axis=1)
    assert cosines.min() > 0.99


def test_draft_applies_to_jpeg_only_and_keeps_exif_orientation():
    photo = Image.new("RGB", (1600, 1200), (20, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    image = decode_image(_jpeg(photo, exif=exif), draft_side=DRAFT_SIDE)
    assert image.size == (600, 800)  # halved, then turned upright
    png = io.BytesIO()
    photo.save(png, "PNG")
    assert decode_image(png.getvalue(), draft_side=DRAFT_SIDE).size == (1600, 1200)


def test_truncated_jpeg_fails_the_encode_stage(embedder):
    data = _large_photo()
    with pytest.raises(ImageDecodeError):
        QueryEncoder(embedder).encode(data[: len(data) // 2], "cut.jpg")


# -- the route's seam -------------------------------------------------------------------------


class FixedEncoder:
    """Answers every photo with the same vectors, without decoding; records what it was given."""

    def __init__(self, vectors: np.ndarray, error: Exception | None = None) -> None:
        self.vectors = vectors
        self.error = error
        self.seen: list[tuple[int, str]] = []

    def encode(self, photo, name: str = "image") -> EncodedQuery:
        self.seen.append((len(photo), name))
        if self.error is not None:
            raise self.error
        return EncodedQuery(None, self.vectors)


@pytest.fixture(scope="module")
def query_vectors(demo_services):
    return QueryEncoder(demo_services.image_embedder).encode(QUERY_PHOTO.read_bytes()).vectors


def _client(demo_services, tmp_path, encoder) -> TestClient:
    from api.settings import Settings

    services = dataclasses.replace(demo_services, query_encoder=encoder, reranker=None)
    settings = Settings(index_dir=tmp_path / "unused-index", runs_db=tmp_path / "runs.sqlite3",
                        rate_limit="100000/minute")
    return TestClient(create_app(services=services, settings=settings),
                      raise_server_exceptions=False)


def test_route_searches_the_injected_encoders_vectors(demo_services, tmp_path, query_vectors):
    from retrieval.search import search_images

    encoder = FixedEncoder(query_vectors)
    data = QUERY_PHOTO.read_bytes()
    with _client(demo_services, tmp_path, encoder) as client:
        response = client.post("/v1/search/image", files={"image": ("q.jpg", data, "image/jpeg")},
                               data={"k": "7"})
    assert response.status_code == 200, response.text
    assert encoder.seen == [(len(data), "q.jpg")]
    expected = search_images(demo_services.index, query_vectors[0], 7,
                             view_vectors=query_vectors[1:])
    assert [hit["listing_id"] for hit in response.json()["hits"]] == \
        [hit.listing_id for hit in expected]


def test_route_refuses_before_the_encoder_and_maps_its_decode_errors(demo_services, tmp_path,
                                                                    query_vectors):
    from tests.test_api_hardening import PDF, bomb_png

    encoder = FixedEncoder(query_vectors)
    failing = FixedEncoder(query_vectors, ImageDecodeError("q.jpg: corrupt or truncated image"))

    def post(client, data, name="q.jpg"):
        return client.post("/v1/search/image", files={"image": (name, data, "image/jpeg")})

    with _client(demo_services, tmp_path, encoder) as client:
        assert post(client, PDF).status_code == 415
        assert post(client, bomb_png(10_000, 10_000)).status_code == 413
        assert post(client, b"").status_code == 422
        assert encoder.seen == []  # none of them reached the encode stage
    with _client(demo_services, tmp_path, failing) as client:
        response = post(client, QUERY_PHOTO.read_bytes())
    assert response.status_code == 422 and "truncated" in response.text
