"""Where the committed default model lives, and a short description of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "default_model"


def default_model_path() -> Path:
    """Folder of the default model; fails with a message saying what to do when it is missing."""
    if not (DEFAULT_MODEL_PATH / "config.json").exists():
        raise FileNotFoundError(
            f"no default model at {DEFAULT_MODEL_PATH}: train one with "
            f"`python -m mlcore_train train ... --out {DEFAULT_MODEL_PATH}`"
        )
    return DEFAULT_MODEL_PATH


def describe_model(path: str | Path | None = None) -> dict[str, Any]:
    """Config, size and recorded metrics of a model folder (the default one when path is None)."""
    folder = Path(path) if path is not None else default_model_path()
    config = json.loads((folder / "config.json").read_text())
    metrics_path = folder / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return {
        "path": str(folder),
        "name": config.get("name"),
        "model": config.get("model"),
        "size_bytes": size,
        "val": metrics.get("val"),
        "test": metrics.get("test"),
        "best_epoch": config.get("best_epoch"),
    }
