import hashlib
import io
import struct
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageCms, JpegImagePlugin, PngImagePlugin
from PIL.ImageFile import ImageFile

from catalog.photos import PhotoRejected, photo_decode_upload, photo_prepare
from tests.conftest import make_bomb_png, make_photo_bytes, make_text_bomb_png

SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
EXIF_GPS_IFD = 0x8825


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


def test_a_png_is_stored_lossless_and_its_hash_is_of_the_stored_bytes():
    original = Image.effect_noise((64, 48), 40).convert("RGB")
    buffer = io.BytesIO()
    original.save(buffer, format="PNG")

    photo = photo_prepare(io.BytesIO(buffer.getvalue()))

    stored = Image.open(io.BytesIO(photo.content))
    assert stored.format == "PNG" and ImageChops.difference(stored.convert("RGB"), original).getbbox() is None
    # The key of the photo's stored features: what the embedding pipeline decodes is these bytes.
    assert photo.sha256 == hashlib.sha256(photo.content).hexdigest()


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP"])
def test_the_same_upload_gives_the_same_stored_bytes(format):
    # A re-import recognises an unchanged photo by this hash, so re-encoding must be deterministic.
    content = make_photo_bytes(format=format, size=(300, 200))
    assert photo_prepare(io.BytesIO(content)).sha256 == photo_prepare(io.BytesIO(content)).sha256


def test_missing_path():
    with pytest.raises(PhotoRejected) as error:
        photo_prepare("/nonexistent/photo.jpg")
    assert error.value.code == "missing"


@pytest.mark.parametrize("after_pixels", [False, True], ids=["before-pixels", "after-pixels"])
def test_a_png_text_chunk_that_inflates_too_far_is_rejected_not_raised(after_pixels):
    crafted = make_text_bomb_png(after_pixels=after_pixels)
    assert len(crafted) < 20_000  # a few kB on the wire, megabytes once inflated

    with pytest.raises(PhotoRejected) as error:
        photo_prepare(io.BytesIO(crafted))

    assert error.value.code == "corrupt"
    assert "damaged and cannot be decoded" in error.value.messages[0]
    assert "Decompressed data too large" in error.value.messages[0]


@pytest.mark.parametrize(
    "raised",
    [
        struct.error("unpack requires a buffer"),
        EOFError(),
        SyntaxError("bad chunk"),
        IndexError("x"),
        KeyError(7),
    ],
    ids=lambda error: type(error).__name__,
)
def test_any_error_pillow_raises_while_decoding_is_a_rejection(monkeypatch, raised):
    def load(self):
        raise raised

    monkeypatch.setattr(ImageFile, "load", load)
    with pytest.raises(PhotoRejected) as error:
        photo_prepare(io.BytesIO(make_photo_bytes()))
    assert error.value.code == "corrupt"
    assert error.value.messages[0].startswith("The photo file is damaged and cannot be decoded (")


def test_a_jpeg_is_stored_without_exif_gps_xmp_or_comment_and_keeps_its_colour_profile():
    exif = Image.Exif()
    exif[0x0112] = 1  # upright: no turn needed, and still the whole EXIF must go
    exif[0x010F] = "Camera Maker"
    gps = exif.get_ifd(EXIF_GPS_IFD)
    gps[1], gps[2] = "N", (51.0, 30.0, 26.0)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "navy").save(
        buffer,
        format="JPEG",
        exif=exif,
        icc_profile=SRGB_PROFILE,
        comment=b"shot at home",
        xmp=b"<x:xmpmeta/>",
    )
    uploaded = Image.open(io.BytesIO(buffer.getvalue()))
    assert uploaded.getexif().get_ifd(EXIF_GPS_IFD) and "comment" in uploaded.info  # the test can fail

    photo = photo_prepare(io.BytesIO(buffer.getvalue()))

    stored = Image.open(io.BytesIO(photo.content))
    assert stored.format == "JPEG" and stored.size == (64, 48)
    assert not stored.getexif() and "exif" not in stored.info
    assert not {"xmp", "comment"} & set(stored.info)
    assert b"Exif" not in photo.content and b"Camera Maker" not in photo.content
    assert stored.info["icc_profile"] == SRGB_PROFILE


def test_a_png_loses_its_text_chunks_and_keeps_its_colour_profile():
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "Jane at 51.5N 0.1W")
    text.add_itxt("Location", "home", zip=True)
    buffer = io.BytesIO()
    Image.new("RGBA", (64, 48), (10, 20, 30, 128)).save(
        buffer, format="PNG", pnginfo=text, icc_profile=SRGB_PROFILE
    )
    assert Image.open(io.BytesIO(buffer.getvalue())).text  # the test can fail

    photo = photo_prepare(io.BytesIO(buffer.getvalue()))

    stored = Image.open(io.BytesIO(photo.content))
    assert stored.format == "PNG" and stored.mode == "RGBA" and stored.text == {}
    assert b"Jane" not in photo.content and b"tEXt" not in photo.content and b"iTXt" not in photo.content
    assert stored.info["icc_profile"] == SRGB_PROFILE
    assert stored.getpixel((0, 0)) == (10, 20, 30, 128)


def test_a_webp_stays_webp_without_its_exif():
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "navy").save(buffer, format="WEBP", exif=exif)

    photo = photo_prepare(io.BytesIO(buffer.getvalue()))

    stored = Image.open(io.BytesIO(photo.content))
    assert (photo.format, photo.extension, stored.format) == ("WEBP", "webp", "WEBP")
    assert not stored.getexif() and b"Camera Maker" not in photo.content


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_and_stored_at_the_maximum_side(settings, monkeypatch):
    settings.PRODUCT_SEARCH_MAX_STORED_IMAGE_SIDE = 256
    decoded_sizes = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spying_draft(self, mode, size):
        result = draft(self, mode, size)
        decoded_sizes.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spying_draft)
    content = make_photo_bytes(size=(1200, 800), exif_orientation=6)

    photo = photo_prepare(io.BytesIO(content))

    # 1200x800 holds 4x the 256x171 kept: libjpeg decodes a quarter of each side, never the whole.
    assert decoded_sizes == [(300, 200)]
    # Orientation 6: stored upright, so taller than wide.
    assert (photo.width, photo.height) == (171, 256)
    assert Image.open(io.BytesIO(photo.content)).size == (171, 256)


def test_a_large_png_is_scaled_down_and_stays_png(settings):
    settings.PRODUCT_SEARCH_MAX_STORED_IMAGE_SIDE = 100
    photo = photo_prepare(io.BytesIO(make_photo_bytes(format="PNG", size=(400, 300))))
    stored = Image.open(io.BytesIO(photo.content))
    assert (photo.format, stored.format, stored.size, (photo.width, photo.height)) == (
        "PNG",
        "PNG",
        (100, 75),
        (100, 75),
    )


def test_a_photo_within_the_maximum_side_keeps_its_size():
    photo = photo_prepare(io.BytesIO(make_photo_bytes(size=(2048, 1000))))
    assert (photo.width, photo.height) == (2048, 1000)


def test_the_pixel_limit_still_applies_before_any_decoding(settings):
    settings.PRODUCT_SEARCH_MAX_IMAGE_PIXELS = 100_000
    with pytest.raises(PhotoRejected) as error:
        photo_prepare(io.BytesIO(make_photo_bytes(size=(400, 300))))
    assert error.value.code == "too_many_pixels"


def test_a_query_photo_is_decoded_upright_and_scaled_without_being_stored(settings):
    settings.PRODUCT_SEARCH_MAX_STORED_IMAGE_SIDE = 100
    image = photo_decode_upload(io.BytesIO(make_photo_bytes(size=(400, 300), exif_orientation=6)))
    assert (image.mode, image.size) == ("RGB", (75, 100))
    with pytest.raises(PhotoRejected):
        photo_decode_upload(io.BytesIO(make_text_bomb_png()))


def test_a_photo_file_that_cannot_be_read_is_a_rejection():
    # A regular file whose read fails (EIO at offset 0) even for root, unlike a chmod 000 file.
    unreadable = Path("/proc/self/mem")
    if not unreadable.is_file():
        pytest.skip("needs Linux's /proc")
    with pytest.raises(PhotoRejected) as error:
        photo_prepare(unreadable)
    assert error.value.code == "unreadable"
    assert error.value.messages[0].startswith("Photo file cannot be read: /proc/self/mem (")
