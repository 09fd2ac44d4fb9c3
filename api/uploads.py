"""Checking an uploaded photo before any agent sees it, each problem mapped to its HTTP status.

* the format is read from the bytes (Pillow's header probe), never from the file name or the
  declared content type: anything outside ``retrieval.images.ALLOWED_FORMATS`` is 415;
* the pixel count is read from the header before any pixel is decoded, so a decompression bomb is
  refused (413) without allocating its pixels;
* a truncated or corrupt file fails the full decode (422);
* the decode applies EXIF orientation (``retrieval.images.decode_image``).

``check_header`` does the first three without decoding a pixel (a few dozen microseconds): the
image search route calls only it and leaves the decode to the query encoder
(``retrieval.query``), whose decode errors it answers 422; ``check_photo`` does all four.

Nothing here imports the agents: a worker process checks uploads cheaply.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from retrieval.images import ALLOWED_FORMATS, MAX_BYTES, MAX_PIXELS, ImageDecodeError, decode_image


class UploadError(ValueError):
    """A photo the API refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CheckedPhoto:
    data: bytes
    name: str
    image: Image.Image  # decoded, RGB, EXIF orientation applied
    format: str
    sha256: str

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


@dataclass(frozen=True)
class PhotoHeader:
    """What the header of an accepted upload says, before any pixel is decoded."""

    format: str
    size: tuple[int, int]


def check_header(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS,
                 max_bytes: int = MAX_BYTES) -> PhotoHeader:
    """The cheap checks (size in bytes, format from the content, pixel count from the header):
    a few dozen microseconds, nothing decoded. Raises ``UploadError`` (413, 415 or 422)."""
    if not data:
        raise UploadError(422, f"{name}: empty file")
    if len(data) > max_bytes:
        raise UploadError(413, f"{name}: {len(data):,} bytes is over the limit of {max_bytes:,}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))  # reads the header only
            kind, (width, height) = probe.format, probe.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadError(413, f"{name}: refused as a decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise UploadError(415, f"{name}: not an image in an allowed format "
                               f"({', '.join(ALLOWED_FORMATS)})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadError(422, f"{name}: corrupt image header ({exc})") from exc
    if kind not in ALLOWED_FORMATS:
        raise UploadError(415, f"{name}: image format {kind} is not allowed; allowed: "
                               f"{', '.join(ALLOWED_FORMATS)}")
    if width * height > max_pixels:
        raise UploadError(413, f"{name}: {width}x{height} pixels is over the limit of "
                               f"{max_pixels:,}")
    return PhotoHeader(format=kind, size=(width, height))


def check_photo(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS,
                max_bytes: int = MAX_BYTES) -> CheckedPhoto:
    """Decode an uploaded photo or raise ``UploadError`` with the status and the reason."""
    header = check_header(data, name, max_pixels, max_bytes)
    try:
        image = decode_image(data, name=name, max_pixels=max_pixels, max_bytes=max_bytes)
    except ImageDecodeError as exc:
        raise UploadError(422, str(exc)) from exc
    return CheckedPhoto(data=data, name=name, image=image, format=header.format,
                        sha256=hashlib.sha256(data).hexdigest())
