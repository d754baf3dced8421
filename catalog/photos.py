"""Checking and storing product photos.

Every photo, from the admin or an import, goes through `photo_prepare` before anything is saved:
size, format, pixel count (decompression bombs), a full decode (truncated or corrupt files), and
EXIF orientation. Stored names are generated here and never come from the uploaded file name.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps, UnidentifiedImageError

from catalog.conf import catalog_settings

_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
_EXIF_ORIENTATION = 0x0112


if TYPE_CHECKING:
    from catalog.models import ProductImage


class PhotoRejected(ValidationError):
    """A photo that cannot be used; `code` says why (too_large, not_an_image, ...)."""


@dataclass(frozen=True)
class PreparedPhoto:
    content: bytes
    format: str
    width: int
    height: int
    sha256: str

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self.format]


def _too_large(max_bytes: int, size: int | None = None) -> PhotoRejected:
    actual = f" ({size / (1024 * 1024):.2f} MB)" if size is not None else ""
    return PhotoRejected(
        f"The photo is larger than the limit of {max_bytes / (1024 * 1024):.1f} MB{actual}. "
        "Resize or compress it and try again.",
        code="too_large",
    )


def _read_limited(source: IO[bytes] | Path | str, max_bytes: int) -> bytes:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise PhotoRejected(f"Photo file not found: {path}", code="missing")
        size = path.stat().st_size
        if size > max_bytes:
            raise _too_large(max_bytes, size)
        return path.read_bytes()
    declared = getattr(source, "size", None)
    if declared is not None and declared > max_bytes:
        raise _too_large(max_bytes, declared)
    if hasattr(source, "seek"):
        source.seek(0)
    # Read one byte past the limit: enough to know, without reading an endless stream.
    content = source.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise _too_large(max_bytes)
    return content


def _open_header(content: bytes, *, max_pixels: int) -> Image.Image:
    """Open the photo reading its header only, so that the size checks run before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(content))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise PhotoRejected(
            f"The photo has too many pixels (a possible decompression bomb); the limit is "
            f"{max_pixels / 1e6:.0f} megapixels.",
            code="too_many_pixels",
        ) from error
    except UnidentifiedImageError as error:
        raise PhotoRejected(
            "This file is not an image Pillow can read. Upload a JPEG, PNG or WebP photo.",
            code="not_an_image",
        ) from error
    except OSError as error:
        raise _corrupt(error) from error


def _corrupt(error: Exception) -> PhotoRejected:
    return PhotoRejected(
        f"The photo file is damaged and cannot be decoded ({error}). Export it again and retry.",
        code="corrupt",
    )


def _check_format_and_size(image: Image.Image, *, allowed_formats: tuple[str, ...], max_pixels: int) -> None:
    if image.format not in allowed_formats:
        raise PhotoRejected(
            f"{image.format or 'This'} photos are not accepted. Upload a JPEG, PNG or WebP photo.",
            code="unsupported_format",
        )
    width, height = image.size
    if width * height > max_pixels:
        raise PhotoRejected(
            f"The photo is {width}x{height} ({width * height / 1e6:.1f} megapixels, a possible "
            f"decompression bomb); the limit is {max_pixels / 1e6:.0f} megapixels. Resize it and try again.",
            code="too_many_pixels",
        )


def _decode_fully(image: Image.Image) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as error:
        raise _corrupt(error) from error


def _upright(image: Image.Image, content: bytes) -> tuple[bytes, tuple[int, int]]:
    """The bytes to store and their size: the photo turned upright when its EXIF says it is rotated,
    since the camera's orientation tag would otherwise be lost by every consumer that ignores EXIF."""
    if image.getexif().get(_EXIF_ORIENTATION, 1) == 1:
        return content, image.size
    image_format = str(image.format)
    upright = ImageOps.exif_transpose(image)
    buffer = io.BytesIO()
    save_options = {"quality": 92} if image_format in {"JPEG", "WEBP"} else {}
    if image_format == "JPEG" and upright.mode not in {"RGB", "L", "CMYK"}:
        upright = upright.convert("RGB")
    upright.save(buffer, format=image_format, **save_options)
    return buffer.getvalue(), upright.size


def photo_prepare(source: IO[bytes] | Path | str) -> PreparedPhoto:
    """Check a photo and return the bytes to store. Raises PhotoRejected with a message for people."""
    max_pixels = catalog_settings.MAX_IMAGE_PIXELS
    content = _read_limited(source, catalog_settings.MAX_IMAGE_BYTES)
    if not content:
        raise PhotoRejected("The photo file is empty.", code="empty")
    image = _open_header(content, max_pixels=max_pixels)
    _check_format_and_size(
        image, allowed_formats=tuple(catalog_settings.ALLOWED_IMAGE_FORMATS), max_pixels=max_pixels
    )
    _decode_fully(image)
    stored, (width, height) = _upright(image, content)
    return PreparedPhoto(
        content=stored,
        format=str(image.format),
        width=width,
        height=height,
        sha256=hashlib.sha256(content).hexdigest(),
    )


def photo_open(image: ProductImage) -> Image.Image:
    """A stored product photo, decoded, as RGB."""
    with image.image.open("rb") as handle:
        photo = Image.open(handle)
        photo.load()
    return photo.convert("RGB")


def photo_store(photo: PreparedPhoto) -> str:
    """Write a prepared photo under a generated name and return that name."""
    name = f"{catalog_settings.PHOTO_UPLOAD_DIR}/{uuid.uuid4().hex}.{photo.extension}"
    return default_storage.save(name, ContentFile(photo.content))


def photo_delete_stored(name: str) -> None:
    if name:
        default_storage.delete(name)
