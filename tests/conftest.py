"""Fixtures shared by every test: a throwaway media folder, Redis, photo files."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

REDIS_HELP = (
    "Redis is not answering at {url}. Start it with: redis-server --daemonize yes --bind 127.0.0.1 "
    '-::1 --port 6379 --save "" --appendonly no'
)


def pytest_configure(config):
    """The tests need the database: start the embedded server as `make db` does (settings no longer do)."""
    from config import embedded_postgres

    embedded_postgres.start_unless_database_url()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="session")
def embedded_replica():
    """A real streaming replica of the embedded server (config/embedded_replica.py), in a folder of this
    test run's own (beside `.pgdata/`), copied fresh when first asked for and removed at the end."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("The replica tests copy the embedded PostgreSQL; DATABASE_URL names another server.")
    from config import embedded_postgres, embedded_replica

    folder = embedded_postgres.PROJECT_ROOT / f".pgdata-test-replica{os.environ.get('TEST_DB_SUFFIX', '')}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EMBEDDED_PG_REPLICA_DIR", str(folder))
        embedded_replica.destroy()  # what a killed run left
        embedded_replica.start()
        try:
            yield embedded_replica
        finally:
            embedded_replica.destroy()


@pytest.fixture
def redis_url(settings) -> str:
    """The real Redis. In CI its absence fails the test; locally it skips with how to start it."""
    import redis

    url = settings.REDIS_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        message = REDIS_HELP.format(url=url)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def make_photo_bytes(
    *, format: str = "JPEG", size: tuple[int, int] = (64, 48), colour: str = "navy", exif_orientation=None
) -> bytes:
    image = Image.new("RGB", size, colour)
    buffer = io.BytesIO()
    options = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        options["exif"] = exif
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


@pytest.fixture
def photo_file(tmp_path) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(make_photo_bytes())
    return path


def make_bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height over one tiny compressed row: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0"))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A small, untrained but real mlcore checkpoint (64 px photos, a small BiLSTM, 32-d space)."""
    from mlcore.checkpoint import save_checkpoint
    from mlcore.config import ModelConfig
    from mlcore.model import create_model

    config = ModelConfig(image_size=64, text_branch="bilstm", lstm_hidden_size=32, embed_dim=32)
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save_checkpoint(create_model(config), folder, name="tiny")
    return folder


@pytest.fixture(scope="session")
def tiny_frozen_trunk_model_path(tmp_path_factory) -> Path:
    """Like tiny_model_path with the whole image trunk frozen, mean+max pooling and mirror averaging: the
    shipped models' image tower, whose pooled photo features are stored."""
    from mlcore.checkpoint import save_checkpoint
    from mlcore.config import ModelConfig
    from mlcore.model import create_model

    config = ModelConfig(
        image_size=64,
        text_branch="bilstm",
        lstm_hidden_size=32,
        embed_dim=32,
        image_trainable_blocks=0,
        image_pooling="mean+max",
        image_mirror_average=True,
    )
    folder = tmp_path_factory.mktemp("models") / "tiny-frozen-trunk"
    save_checkpoint(create_model(config), folder, name="tiny-frozen-trunk")
    return folder


def make_text_bomb_png(*, after_pixels: bool = False) -> bytes:
    """A valid 8x8 PNG carrying a zTXt chunk of a few kB that inflates past Pillow's MAX_TEXT_CHUNK:
    Pillow refuses it with ValueError ("Decompressed data too large"), on open when the chunk comes
    before the pixels, on load when it comes after them."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    inflated = b"\0" * (4 * PngImagePlugin.MAX_TEXT_CHUNK)
    text = chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(inflated, 9))
    png = make_photo_bytes(format="PNG", size=(8, 8))
    # Signature (8) + IHDR (25), then IDAT..., then IEND (12).
    at = len(png) - 12 if after_pixels else 33
    return png[:at] + text + png[at:]
