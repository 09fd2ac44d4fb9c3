"""Decoding uploaded or catalog photos safely: content-checked format, pixel limit (decompression
bombs), truncated files and EXIF orientation, each refused with an error that names the problem."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
MAX_PIXELS = 40_000_000  # a 40-megapixel photo is the largest we decode
MAX_BYTES = 25 * 1024 * 1024  # a photo file larger than 25 MiB is refused before it is read


class ImageDecodeError(ValueError):
    """The bytes are not a usable photo; the message says why."""


def decode_image(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS,
                 max_bytes: int = MAX_BYTES, draft_side: int | None = None) -> Image.Image:
    """Decode ``data`` into an RGB image with EXIF orientation applied.

    ``draft_side``: a JPEG is decoded straight at a reduced scale (1/2, 1/4 or 1/8, Pillow's
    ``Image.draft``: the decoder skips the fine DCT coefficients) as long as both sides stay at
    least this many px; other formats, and JPEGs too small to reduce, decode at full size. A
    12-megapixel phone photo searched at a few hundred px then costs a fraction of its full
    decode. The whole file is still read, so a truncated one is refused all the same.
    """
    if not data:
        raise ImageDecodeError(f"{name}: empty file")
    if len(data) > max_bytes:
        raise ImageDecodeError(f"{name}: {len(data):,} bytes is over the limit of {max_bytes:,}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            if probe.format not in ALLOWED_FORMATS:
                raise ImageDecodeError(
                    f"{name}: unsupported image format {probe.format!r}; "
                    f"allowed: {', '.join(ALLOWED_FORMATS)}")
            width, height = probe.size
            if width * height > max_pixels:
                raise ImageDecodeError(
                    f"{name}: {width}x{height} pixels is over the limit of {max_pixels:,}")
            if draft_side and probe.format == "JPEG":
                probe.draft(probe.mode, (draft_side, draft_side))
            probe.load()
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"{name}: refused as a decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(f"{name}: not a recognised image file") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"{name}: corrupt or truncated image ({exc})") from exc
    image = ImageOps.exif_transpose(probe)
    return image.convert("RGB")


def read_photo_bytes(path: str | Path, max_bytes: int = MAX_BYTES) -> bytes:
    """A photo file's bytes; a file over ``max_bytes`` is refused before it is read."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageDecodeError(f"{path}: {size:,} bytes is over the limit of {max_bytes:,}")
        return path.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS,
               max_bytes: int = MAX_BYTES) -> Image.Image:
    """Read and decode a photo file; an oversized file is refused before it is read."""
    data = read_photo_bytes(path, max_bytes)
    return decode_image(data, name=str(path), max_pixels=max_pixels, max_bytes=max_bytes)


def on_white(image: Image.Image) -> Image.Image:
    """The photo with its transparent parts (cut-out product shots) laid on a white backdrop;
    an opaque photo is returned as it is."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image
