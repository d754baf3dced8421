"""Fixtures for mlcore tests: tiny synthetic catalogues drawn with Pillow (no shared datasets needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

COLOURS = {
    "Red": (220, 30, 30),
    "Blue": (30, 60, 220),
    "Green": (30, 170, 60),
    "Black": (20, 20, 20),
    "Yellow": (240, 210, 30),
    "Purple": (130, 40, 160),
    "Orange": (250, 130, 20),
    "Grey": (128, 128, 128),
}
SHAPES = {"Tshirts": "ellipse", "Shoes": "rectangle"}


HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "large_backbone: random-init b1..b6 shape checks; run with MLCORE_SLOW_TESTS=1"
    )


def pytest_collection_modifyitems(config, items):
    # Only this folder's own marker is acted on, so other suites' markers are left alone.
    if os.environ.get("MLCORE_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="large random-init backbone; set MLCORE_SLOW_TESTS=1 to run")
    for item in items:
        if item.get_closest_marker("large_backbone") and HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


def draw_product(
    path: Path, colour: tuple[int, int, int], shape: str, size: tuple[int, int] = (48, 64)
) -> Path:
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    box = (6, 8, size[0] - 6, size[1] - 8)
    getattr(draw, shape)(box, fill=colour)
    image.save(path)
    return path


@pytest.fixture(autouse=True)
def isolated_feature_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCORE_CACHE_DIR", str(tmp_path / "feature_cache"))


@pytest.fixture
def synthetic_catalog(tmp_path) -> tuple[Path, Path]:
    """16 products (8 colours x 2 article types), a catalog.jsonl and a splits.json (all in every split)."""
    images = tmp_path / "catalog" / "images"
    images.mkdir(parents=True)
    rows = []
    for colour, rgb in COLOURS.items():
        for article_type, shape in SHAPES.items():
            sku = str(1000 + len(rows))
            draw_product(images / f"{sku}.jpg", rgb, shape)
            rows.append(
                {
                    "sku": sku,
                    "title": f"Acme Men {colour} {article_type}",
                    "brand": "Acme",
                    "gender": "Men",
                    "colour": colour,
                    "article_type": article_type,
                    "image": f"images/{sku}.jpg",
                    "description": "",
                }
            )
    catalog = tmp_path / "catalog" / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(row) + "\n" for row in rows))
    skus = [row["sku"] for row in rows]
    splits = tmp_path / "catalog" / "splits.json"
    splits.write_text(json.dumps({"train": skus, "val": skus, "test": skus}))
    return catalog, splits
