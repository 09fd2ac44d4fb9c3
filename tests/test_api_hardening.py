"""Bad input cannot break the API: oversized bodies, disguised files, pixel bombs, truncated
photos, missing or wrong API keys and bursts over the rate limit are each answered with the
right 4xx (never a 5xx); EXIF orientation is applied; every answer carries a request id."""

from __future__ import annotations

import io
import socket
import struct
import subprocess
import sys
import textwrap
import zlib
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr

from api.app import create_app
from tests.api_support import QUERY_PHOTO, jpeg_bytes, live_server
from tests.conftest import REPO

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def bomb_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG of ``width`` x ``height`` black pixels: tiny on disk, huge decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    packer = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte + one byte per pixel
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def noisy_jpeg(size=(256, 256)) -> bytes:
    image = Image.effect_noise(size, 60).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def settings(demo_settings, tmp_path_factory):
    return demo_settings.model_copy(update={
        "runs_db": tmp_path_factory.mktemp("runs") / "runs.sqlite3",
        "max_body_bytes": 2 * 1024 * 1024, "rate_limit": "1000/minute"})


@pytest.fixture(scope="module")
def client(demo_services, settings):
    with TestClient(create_app(services=demo_services, settings=settings),
                    raise_server_exceptions=False) as client:
        yield client


def post_photo(client, data: bytes, name: str = "photo.jpg", path: str = "/v1/runs",
               content_type: str = "image/jpeg"):
    form = {"market": "US"} if path == "/v1/runs" else {}
    return client.post(path, files={"image": (name, data, content_type)}, data=form)


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/search/image"])
def test_oversized_body_is_413_naming_the_limit(client, settings, path):
    response = post_photo(client, b"\xff\xd8\xff" + b"\0" * settings.max_body_bytes, path=path)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == (f"Content Too Large: the request body is over the limit of "
                             f"{settings.max_body_bytes:,} bytes (SOURCING_MAX_BODY_BYTES)")
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["x-request-id"]


def test_oversized_body_sent_without_a_length_is_413_naming_the_limit(client, settings):
    def chunks():  # a chunked body: no declared length, cut off once over the limit
        for _ in range(3):
            yield b" " * settings.max_body_bytes

    response = client.post("/v1/search/text", content=chunks(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert f"over the limit of {settings.max_body_bytes:,} bytes" in response.json()["detail"]


def test_oversized_body_is_refused_before_it_is_read(demo_services, settings):
    """The server answers 413 from the declared length, with only a sliver of the body sent."""
    with live_server(create_app(services=demo_services, settings=settings)) as base:
        url = urlparse(base)
        with socket.create_connection((url.hostname, url.port), timeout=30) as conn:
            declared = 1024 * 1024 * 1024  # 1 GiB announced, 1 KiB sent
            conn.sendall((f"POST /v1/runs HTTP/1.1\r\nHost: {url.netloc}\r\n"
                          "Content-Type: multipart/form-data; boundary=x\r\n"
                          f"Content-Length: {declared}\r\n\r\n").encode() + b"-" * 1024)
            reply = conn.recv(65536).decode("latin-1")
    assert reply.startswith("HTTP/1.1 413")


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/search/image"])
def test_pdf_renamed_jpg_is_415(client, path):
    response = post_photo(client, PDF, name="photo.jpg", path=path)
    assert response.status_code == 415
    assert "not an image in an allowed format" in response.json()["detail"]


def test_allowed_format_is_judged_by_content_not_name(client):
    tiff = io.BytesIO()
    Image.new("RGB", (8, 8)).save(tiff, "TIFF")
    assert post_photo(client, tiff.getvalue(), name="photo.png").status_code == 415


@pytest.mark.parametrize("size", [(10_000, 8_000), (30_000, 30_000)])
def test_pixel_bomb_is_refused_with_4xx(client, size):
    response = post_photo(client, bomb_png(*size), name="bomb.png", content_type="image/png")
    assert response.status_code == 413
    assert "pixels" in response.json()["detail"] or "bomb" in response.json()["detail"]


def test_pixel_bomb_is_refused_in_bounded_memory(tmp_path):
    """Under a 200 MiB address-space cap the upload check refuses an 80-megapixel bomb, while
    decoding the same file the naive way runs out of memory: the check never decodes it."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png(10_000, 8_000))
    script = textwrap.dedent(f"""
        import io, resource
        from api.uploads import UploadError, check_photo
        from PIL import Image
        data = open({str(bomb)!r}, "rb").read()
        cap = 200 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        try:
            check_photo(data, "bomb.png")
            print("accepted")
        except UploadError as error:
            print("refused", error.status)
        try:
            Image.open(io.BytesIO(data)).convert("RGB")
            print("naive decode fits")
        except MemoryError:
            print("naive decode needs more")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.split("\n")[:2] == ["refused 413", "naive decode needs more"], done.stderr


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/search/image"])
def test_truncated_jpeg_is_422(client, path):
    data = noisy_jpeg()
    response = post_photo(client, data[: len(data) // 2], path=path)
    assert response.status_code == 422
    assert "truncated" in response.json()["detail"]


@pytest.mark.parametrize("data", [b"", b"\xff\xd8\xff\xe0garbage", b"\x89PNG\r\n\x1a\nbroken"])
def test_empty_or_corrupt_files_are_4xx(client, data):
    assert 400 <= post_photo(client, data).status_code < 500


def test_exif_orientation_is_applied(client):
    """A 64x32 photo tagged 'rotate 90' is 32x64 once its orientation is applied."""
    exif = Image.Exif()
    exif[0x0112] = 6
    response = client.post("/v1/runs?mode=async", files={
        "image": ("rotated.jpg", jpeg_bytes((64, 32), exif=exif.tobytes()), "image/jpeg")},
                           data={"market": "US"})
    assert response.status_code == 202
    record = client.get(f"/v1/runs/{response.json()['id']}").json()
    assert record["request"]["image_size"] == [32, 64]


def test_api_keys_401_403_and_open_probes(demo_services, settings, tmp_path):
    keyed = settings.model_copy(update={"api_keys": SecretStr("alpha-key, beta-key"),
                                        "runs_db": tmp_path / "runs.sqlite3"})
    with TestClient(create_app(services=demo_services, settings=keyed)) as client:
        missing = client.get("/v1/markets")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/markets", headers={"X-API-Key": "wrong"}).status_code == 403
        assert client.get("/v1/markets", headers={"X-API-Key": "alpha-key"}).status_code == 200
        assert client.get("/v1/markets",
                          headers={"Authorization": "Bearer beta-key"}).status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/").status_code == 200
        # runs are private to the key that made them
        made = client.post("/v1/runs?mode=async", headers={"X-API-Key": "alpha-key"},
                           files={"image": ("q.jpg", QUERY_PHOTO.read_bytes())},
                           data={"market": "US"})
        run = f"/v1/runs/{made.json()['id']}"
        assert client.get(run, headers={"X-API-Key": "alpha-key"}).status_code == 200
        assert client.get(run, headers={"X-API-Key": "beta-key"}).status_code == 404


def test_burst_over_the_rate_limit_is_429_with_retry_after(demo_services, settings, tmp_path):
    limited = settings.model_copy(update={"rate_limit": "5/minute",
                                          "runs_db": tmp_path / "runs.sqlite3"})
    with TestClient(create_app(services=demo_services, settings=limited)) as client:
        statuses = [client.get("/v1/markets") for _ in range(8)]
        codes = [response.status_code for response in statuses]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
        assert 1 <= int(statuses[-1].headers["retry-after"]) <= 60
        assert client.get("/healthz").status_code == 200  # probes are never limited


def test_bad_settings_are_refused_naming_the_variable(demo_settings):
    from api.settings import Settings

    with pytest.raises(ValueError, match="SOURCING_RATE_LIMIT"):
        Settings(rate_limit="lots")
    with pytest.raises(ValueError, match="SOURCING_API_KEYS"):
        Settings(api_keys=" , ")


def test_request_ids_are_echoed_or_made(client):
    given = client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert given.headers["x-request-id"] == "trace-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"})
    assert made.headers["x-request-id"] != "bad id\twith junk" and len(made.headers["x-request-id"]) == 16
    missing = client.get("/v1/runs/nope")
    assert missing.status_code == 404 and missing.json()["request_id"] == missing.headers["x-request-id"]


def test_none_of_the_bad_inputs_gives_a_5xx(client):
    data = noisy_jpeg()
    bad = [PDF, data[: len(data) // 3], bomb_png(9_000, 9_000), b"GIF89a", b"BM\0\0",
           b"RIFF\0\0\0\0WEBPVP8 ", b"\0" * 100]
    codes = [post_photo(client, body, path=path).status_code
             for body in bad for path in ("/v1/runs", "/v1/search/image")]
    codes.append(client.post("/v1/runs", data={"market": "US"}).status_code)  # no file
    codes.append(client.post("/v1/search/text", json={"query": "   "}).status_code)
    codes.append(client.post("/v1/search/text", content=b"{oops",
                             headers={"content-type": "application/json"}).status_code)
    assert all(400 <= code < 500 for code in codes), codes
