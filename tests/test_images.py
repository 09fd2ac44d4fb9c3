"""Photo decoding refuses bad input with a message that names the problem."""

import io

import pytest
from PIL import Image

from retrieval.images import ImageDecodeError, decode_image


def _jpeg(size=(40, 30), colour="red", **save):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", **save)
    return buffer.getvalue()


def test_decodes_jpeg_to_rgb():
    image = decode_image(_jpeg())
    assert image.mode == "RGB" and image.size == (40, 30)


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image = decode_image(_jpeg(size=(40, 30), exif=exif.tobytes()))
    assert image.size == (30, 40)


def test_empty_garbage_truncated_and_disallowed_formats_are_refused():
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image(b"")
    with pytest.raises(ImageDecodeError, match="not a recognised image"):
        decode_image(b"this is text, not a photo", name="notes.jpg")
    with pytest.raises(ImageDecodeError, match="corrupt or truncated"):
        decode_image(_jpeg(size=(200, 200))[:300])
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "TIFF")
    with pytest.raises(ImageDecodeError, match="unsupported image format 'TIFF'"):
        decode_image(buffer.getvalue())


def test_pixel_limit_refuses_huge_images_before_decoding():
    buffer = io.BytesIO()
    Image.new("L", (3000, 3000)).save(buffer, "PNG")
    with pytest.raises(ImageDecodeError, match="over the limit"):
        decode_image(buffer.getvalue(), max_pixels=1_000_000)


def test_oversized_files_are_refused_before_reading(tmp_path):
    from retrieval.images import load_image

    with pytest.raises(ImageDecodeError, match="over the limit of 1,000"):
        decode_image(_jpeg(size=(200, 200)), max_bytes=1000)
    path = tmp_path / "huge.jpg"
    path.write_bytes(_jpeg(size=(200, 200)))
    with pytest.raises(ImageDecodeError, match="huge.jpg: .* bytes is over the limit"):
        load_image(path, max_bytes=1000)
