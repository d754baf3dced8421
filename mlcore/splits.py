"""Split files: `splits.json` maps a split name (`train`, `val`, `test`) to a list of skus."""

from __future__ import annotations

import json
from pathlib import Path


def split_skus(*, split_file: str | Path, split: str) -> set[str]:
    """The skus of one split, as strings. Raises ValueError naming the splits the file has."""
    splits = json.loads(Path(split_file).read_text())
    if split not in splits:
        raise ValueError(f"split {split!r} is not in {split_file}; it has: {', '.join(sorted(splits))}")
    return {str(sku) for sku in splits[split]}
