import io

import pytest
from PIL import Image

from catalog.photos import PhotoRejected, photo_prepare
from tests.conftest import make_bomb_png, make_photo_bytes


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP"])
def test_accepts_the_three_formats(format):
    photo = photo_prepare(io.BytesIO(make_photo_bytes(format=format)))
    assert (photo.format, photo.width, photo.height) == (format, 64, 48)
    assert len(photo.sha256) == 64


def test_rejects_a_file_over_the_size_limit():
    oversized = make_photo_bytes() + b"\0" * (10 * 1024 * 1024)
    with pytest.raises(PhotoRejected) as error:
        photo_prepare(io.BytesIO(oversized))
    assert error.value.code == "too_large"
    assert "limit of 10.0 MB" in error.value.messages[0]


def test_rejects_a_decompression_bomb_before_decoding_it():
    with pytest.raises(PhotoRejected) as error:
        photo_prepare(io.BytesIO(make_bomb_png(8000, 6000)))  # 48 megapixels
    assert error.value.code == "too_many_pixels"


def test_rejects_a_giant_bomb_that_pillow_itself_refuses():
    with pytest.raises(PhotoRejected) as error:
        photo_prepare(io.BytesIO(make_bomb_png(30000, 30000)))
    assert error.value.code == "too_many_pixels"


def test_rejects_a_truncated_jpeg():
    truncated = make_photo_bytes(size=(400, 300))[:-400]
    with pytest.raises(PhotoRejected) as error:
        photo_prepare(io.BytesIO(truncated))
    assert error.value.code == "corrupt"


def test_rejects_text_and_gif():
    with pytest.raises(PhotoRejected) as error:
        photo_prepare(io.BytesIO(b"name,price\nshirt,10\n"))
    assert error.value.code == "not_an_image"
    with pytest.raises(PhotoRejected) as error:
        photo_prepare(io.BytesIO(make_photo_bytes(format="GIF")))
    assert error.value.code == "unsupported_format"


def test_rejects_an_empty_file():
    with pytest.raises(PhotoRejected) as error:
        photo_prepare(io.BytesIO(b""))
    assert error.value.code == "empty"


def test_applies_exif_orientation():
    # Orientation 6: the camera was turned, the pixels are stored sideways.
    photo = photo_prepare(io.BytesIO(make_photo_bytes(size=(64, 48), exif_orientation=6)))
    assert (photo.width, photo.height) == (48, 64)
    stored = Image.open(io.BytesIO(photo.content))
    assert stored.size == (48, 64)
    assert stored.getexif().get(0x0112, 1) == 1


def test_keeps_bytes_of_an_upright_photo(photo_file):
    photo = photo_prepare(photo_file)
    assert photo.content == photo_file.read_bytes()


def test_missing_path():
    with pytest.raises(PhotoRejected) as error:
        photo_prepare("/nonexistent/photo.jpg")
    assert error.value.code == "missing"
