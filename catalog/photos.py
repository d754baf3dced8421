"""Checking and storing product photos.

Every photo, from the admin or an import, goes through `photo_prepare` before anything is saved:
size, format, pixel count (decompression bombs), a full decode (truncated or corrupt files; anything
Pillow raises is a rejection), EXIF orientation. What is stored is a re-encoded copy: upright, scaled
down to MAX_STORED_IMAGE_SIDE, with its colour profile and none of the uploaded file's metadata (EXIF
with its GPS position, XMP, comments, PNG text). Stored names are generated here and never come from
the uploaded file name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps, UnidentifiedImageError

from catalog.conf import catalog_settings

_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
# Lossy formats are re-encoded at this quality: visually lossless for product photos.
JPEG_WEBP_QUALITY = 92


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
    # Of `content`, the stored bytes: ProductImage.content_sha256, the key of a photo's stored
    # features (lifecycle.PhotoFeatures), which are computed from exactly these bytes.
    sha256: str
    # Of the bytes as uploaded or read from a catalogue (ProductImage.source_sha256): a re-import
    # recognises an unchanged photo by hashing its file, without decoding it again.
    source_sha256: str | None = None
    # Where an import's worker process stored `content` already (photo_prepare_and_store_files); the
    # content itself is then not carried back. The importer deletes it if no product takes it.
    stored_name: str | None = None

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self.format]


@dataclass(frozen=True)
class PhotoLimits:
    """The photo settings, read once: what a worker process is given instead of reading settings."""

    max_bytes: int
    max_pixels: int
    max_stored_side: int
    allowed_formats: tuple[str, ...]


def photo_limits() -> PhotoLimits:
    return PhotoLimits(
        max_bytes=int(catalog_settings.MAX_IMAGE_BYTES),
        max_pixels=int(catalog_settings.MAX_IMAGE_PIXELS),
        max_stored_side=int(catalog_settings.MAX_STORED_IMAGE_SIDE),
        allowed_formats=tuple(catalog_settings.ALLOWED_IMAGE_FORMATS),
    )


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
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise _too_large(max_bytes, size)
            return path.read_bytes()
        except OSError as error:  # no permission, a disk error: this photo, not the whole import
            raise PhotoRejected(
                f"Photo file cannot be read: {path} ({error.strerror or error})", code="unreadable"
            ) from error
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


def _too_many_pixels(max_pixels: int) -> PhotoRejected:
    return PhotoRejected(
        f"The photo has too many pixels (a possible decompression bomb); the limit is "
        f"{max_pixels / 1e6:.0f} megapixels.",
        code="too_many_pixels",
    )


def _corrupt(error: Exception) -> PhotoRejected:
    reason = str(error) or type(error).__name__
    return PhotoRejected(
        f"The photo file is damaged and cannot be decoded ({reason}). Export it again and retry.",
        code="corrupt",
    )


@contextmanager
def _pillow_errors(*, max_pixels: int) -> Iterator[None]:
    """Turn whatever Pillow raises on a damaged or hostile file into PhotoRejected.

    Pillow's plugins raise many kinds while opening, reading a header, transposing or decoding
    (ValueError for an oversized PNG text chunk, OSError, SyntaxError, struct.error, EOFError,
    IndexError ...); an upload is untrusted input, so none of them may reach a caller as a crash.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except PhotoRejected:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise _too_many_pixels(max_pixels) from error
    except UnidentifiedImageError as error:
        raise PhotoRejected(
            "This file is not an image Pillow can read. Upload a JPEG, PNG or WebP photo.",
            code="not_an_image",
        ) from error
    except Exception as error:  # noqa: BLE001 - see the docstring: any decoder error is a bad photo
        raise _corrupt(error) from error


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


def _fitted_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled down, keeping its proportions, so that its longest side is at most `max_side`."""
    width, height = size
    longest = max(width, height)
    if longest <= max_side:
        return size
    return max(1, round(width * max_side / longest)), max(1, round(height * max_side / longest))


@dataclass(frozen=True)
class _Decoded:
    image: Image.Image  # upright, at most the stored size, with no metadata left in `info`
    format: str
    icc_profile: bytes | None


def _decode(content: bytes, limits: PhotoLimits) -> _Decoded:
    """The checked photo decoded: upright, scaled down to the stored size, metadata dropped.

    The header is read first so the format and pixel checks run before any pixel is decoded. Then
    the whole file is decoded (a truncated or corrupt one fails here, not later in a worker). A
    large JPEG is decoded at a reduced scale (libjpeg's DCT scaling, Pillow's `draft`): a 40
    megapixel photo never needs its full 120 MB of pixels when at most MAX_STORED_IMAGE_SIDE is kept.
    """
    max_pixels = limits.max_pixels
    max_side = limits.max_stored_side
    with _pillow_errors(max_pixels=max_pixels):
        image = Image.open(io.BytesIO(content))
        _check_format_and_size(image, allowed_formats=limits.allowed_formats, max_pixels=max_pixels)
        image_format = str(image.format)
        target = _fitted_size(image.size, max_side)
        if image_format == "JPEG" and target != image.size:
            # The decoded size is the smallest power-of-two reduction still at least `target`, so the
            # resize below only ever scales down.
            image.draft(None, target)
        image.load()
        icc_profile = image.info.get("icc_profile")
        transparency = image.info.get("transparency")
        # Always a new image: the uploaded file's EXIF (GPS position, camera serial), XMP, comments
        # and PNG text chunks stay behind in the original's `info`, which Pillow would write back.
        upright = ImageOps.exif_transpose(image)
        if max(upright.size) > max_side:
            if upright.mode in {"1", "P"}:
                # Palette images resize by nearest neighbour only; in full colour they resize smoothly.
                upright = upright.convert("RGBA" if transparency is not None else "RGB")
                transparency = None
            upright = upright.resize(_fitted_size(upright.size, max_side), Image.Resampling.LANCZOS)
    upright.info = {} if transparency is None else {"transparency": transparency}
    return _Decoded(image=upright, format=image_format, icc_profile=icc_profile)


def _encode(decoded: _Decoded, limits: PhotoLimits) -> bytes:
    """The bytes to store: the same format (PNG stays lossless), the colour profile and nothing else."""
    image, image_format = decoded.image, decoded.format
    options: dict[str, object] = {}
    if decoded.icc_profile:
        options["icc_profile"] = decoded.icc_profile
    if image_format in {"JPEG", "WEBP"}:
        options["quality"] = JPEG_WEBP_QUALITY
    if image_format == "JPEG" and image.mode not in {"RGB", "L", "CMYK"}:
        image = image.convert("RGB")
    buffer = io.BytesIO()
    with _pillow_errors(max_pixels=limits.max_pixels):
        image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def photo_read_checked(source: IO[bytes] | Path | str, limits: PhotoLimits) -> bytes:
    """The photo's bytes as given, within the size limit and not empty (nothing decoded yet)."""
    content = _read_limited(source, limits.max_bytes)
    if not content:
        raise PhotoRejected("The photo file is empty.", code="empty")
    return content


def photo_source_sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def photo_prepare_content(content: bytes, limits: PhotoLimits) -> PreparedPhoto:
    """`photo_prepare` for bytes already read with `photo_read_checked`; reads no setting, so a
    worker process can run it."""
    decoded = _decode(content, limits)
    stored = _encode(decoded, limits)
    width, height = decoded.image.size
    return PreparedPhoto(
        content=stored,
        format=decoded.format,
        width=width,
        height=height,
        sha256=hashlib.sha256(stored).hexdigest(),
        source_sha256=photo_source_sha256(content),
    )


@dataclass(frozen=True)
class PhotoRefused:
    """A refusal from `photo_prepare_file`: PhotoRejected's message and code, as a plain value."""

    message: str
    code: str | None


def photo_prepare_file(path: str, limits: PhotoLimits) -> PreparedPhoto | PhotoRefused:
    """`photo_prepare` of a file, for a worker process: it reads no Django setting, and returns a
    refusal instead of raising it, so that one bad photo never fails the others sent with it."""
    try:
        return photo_prepare_content(photo_read_checked(path, limits), limits)
    except PhotoRejected as error:
        return PhotoRefused(" ".join(error.messages), error.code)
    except Exception as error:  # noqa: BLE001 - one photo, whatever went wrong, is one refusal
        return PhotoRefused(f"unexpected error ({type(error).__name__}: {error})", "unexpected")


def photo_prepare_files(paths: list[str], limits: PhotoLimits) -> list[PreparedPhoto | PhotoRefused]:
    """`photo_prepare_file` of each path: one message between processes for many photos."""
    return [photo_prepare_file(path, limits) for path in paths]


def photo_prepare_and_store_files(
    paths: list[str], limits: PhotoLimits
) -> list[PreparedPhoto | PhotoRefused]:
    """`photo_prepare_files`, each prepared photo also stored (`photo_store`), for a worker process
    forked from a configured Django: the importing process is spared the writes."""
    results: list[PreparedPhoto | PhotoRefused] = []
    for result in photo_prepare_files(paths, limits):
        if isinstance(result, PreparedPhoto):
            try:
                result = dataclasses.replace(result, content=b"", stored_name=photo_store(result))
            except Exception as error:  # noqa: BLE001 - one photo, whatever went wrong, is one refusal
                result = PhotoRefused(f"could not be stored ({type(error).__name__}: {error})", "not_stored")
        results.append(result)
    return results


def photo_prepare(source: IO[bytes] | Path | str) -> PreparedPhoto:
    """Check a photo and return the bytes to store. Raises PhotoRejected with a message for people.

    The stored photo is always re-encoded: upright, at most MAX_STORED_IMAGE_SIDE on its longest
    side, with its ICC colour profile and without EXIF, XMP, comments or text chunks.
    """
    limits = photo_limits()
    return photo_prepare_content(photo_read_checked(source, limits), limits)


def photo_decode_upload(source: IO[bytes] | Path | str) -> Image.Image:
    """A photo that is never stored (a search query), checked and decoded as `photo_prepare` does,
    as RGB: the same pixels the stored copy would hold, without encoding them only to decode again."""
    limits = photo_limits()
    decoded = _decode(photo_read_checked(source, limits), limits)
    with _pillow_errors(max_pixels=limits.max_pixels):
        return decoded.image.convert("RGB")


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
