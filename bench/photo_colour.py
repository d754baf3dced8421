"""How often the colour read from a photo (mlcore.photo_colour) names the colour the shop wrote.

For each shop, products whose colour is known: the `colour` field (Myntra `val`, Luma `train`), and on
IndoFashion, whose colour field is mostly empty, the one palette colour its title names. The reader is
compared in the same run with the raw baseline it replaces, the whole photo's mean colour named from the
same palette, and with the shop's most common colour. Writes the `photo-colour` section of BENCHMARKS.md.

    python bench/photo_colour.py [--limit N] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchmarks_file import markdown_table, write_section  # noqa: E402
from mlcore.image_preprocessing import open_rgb  # noqa: E402
from mlcore.photo_colour import (  # noqa: E402
    COLOUR_NAMES,
    nearest_palette_index,
    read_garment_colour,
    srgb_to_lab,
)
from mlcore.splits import split_skus  # noqa: E402

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SHOPS = {
    "myntra": ("val", "field"),
    "luma": ("train", "field"),
    "indofashion": ("val", "title"),
}

# Shop colour words -> the palette name a shopper would accept for them; None: no single colour.
LABEL_TO_PALETTE: dict[str, str | None] = {
    **{name.lower(): name for name in COLOUR_NAMES},
    "gray": "Grey",
    "off white": "White",
    "cream": "Beige",
    "charcoal": "Grey",
    "steel": "Grey",
    "silver": "Grey",
    "lavender": "Purple",
    "violet": "Purple",
    "mustard": "Yellow",
    "khaki": "Beige",
    "tan": "Brown",
    "coffee brown": "Brown",
    "dark blue": "Navy Blue",
    "navy": "Navy Blue",
    "nevy blue": "Navy Blue",
    "light blue": "Blue",
    "sky blue": "Blue",
    "royal blue": "Blue",
    "dark green": "Green",
    "light green": "Green",
    "sea green": "Green",
    "turquoise blue": "Teal",
    "turquoise": "Teal",
    "burgundy": "Maroon",
    "wine": "Maroon",
    "rust": "Orange",
    "fuchsia": "Magenta",
    "rose": "Pink",
    "peach": "Pink",
    "nude": "Beige",
}
_TITLE_COLOUR = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, LABEL_TO_PALETTE), key=len, reverse=True)) + r")\b", re.I
)


def label_of(row: dict, source: str) -> str | None:
    if source == "field":
        return LABEL_TO_PALETTE.get(str(row.get("colour") or "").strip().lower())
    named = {LABEL_TO_PALETTE[match.lower()] for match in _TITLE_COLOUR.findall(row["title"])}
    return named.pop() if len(named) == 1 else None


def mean_colour(path: Path) -> str:
    """The raw baseline: the whole photo's mean colour, named from the same palette."""
    pixels = np.asarray(open_rgb(path).resize((64, 64)), dtype=np.float32) / 255.0
    return COLOUR_NAMES[
        int(nearest_palette_index(srgb_to_lab(pixels.reshape(-1, 3).mean(axis=0, keepdims=True)))[0])
    ]


def measure(shop: str, split: str, source: str, limit: int | None) -> dict:
    root = DATASETS / shop
    keep = split_skus(split_file=root / "splits.json", split=split)
    rows = [json.loads(line) for line in (root / "catalog.jsonl").open() if line.strip()]
    labelled = [(row, label) for row in rows if row["sku"] in keep and (label := label_of(row, source))]
    labelled = labelled[:limit] if limit else labelled
    reader_hits = baseline_hits = 0
    confusions: Counter = Counter()
    started = time.perf_counter()
    for row, label in labelled:
        read = read_garment_colour(root / row["image"]).name
        reader_hits += read == label
        if read != label:
            confusions[(label, read)] += 1
    reader_seconds = time.perf_counter() - started
    for row, label in labelled:
        baseline_hits += mean_colour(root / row["image"]) == label
    majority_label, majority_count = Counter(label for _, label in labelled).most_common(1)[0]
    count = len(labelled)
    return {
        "shop": shop,
        "split": split,
        "source": source,
        "count": count,
        "reader": reader_hits / count,
        "baseline": baseline_hits / count,
        "majority": majority_count / count,
        "majority_label": majority_label,
        "ms_per_photo": 1000 * reader_seconds / count,
        "confusions": confusions.most_common(4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="products per shop (default: all)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    arguments = parser.parse_args()
    results = [measure(shop, split, source, arguments.limit) for shop, (split, source) in SHOPS.items()]
    header = [
        "shop (split, colour from)",
        "products",
        "photo reader",
        "raw baseline: mean colour",
        "most common colour",
        "reader ms / photo",
        "commonest misses (shop -> read)",
    ]
    table = markdown_table(
        header,
        [
            [
                f"{result['shop']} ({result['split']}, {result['source']})",
                str(result["count"]),
                f"{result['reader']:.3f}",
                f"{result['baseline']:.3f}",
                f"{result['majority']:.3f} ({result['majority_label']})",
                f"{result['ms_per_photo']:.1f}",
                ", ".join(f"{label} -> {read} ({count})" for (label, read), count in result["confusions"]),
            ]
            for result in results
        ],
    )
    print(table)
    if arguments.no_write:
        return
    body = f"""## Colour read from the photo (`bench/photo_colour.py`)

Share of products whose photo the reader (`mlcore.photo_colour.read_garment_colour`: background from the
border, skin set aside, centre-weighted vote over a {len(COLOUR_NAMES)}-name palette) names with the colour
the shop wrote, its word mapped onto the palette (Navy and Dark Blue are Navy Blue, Cream is Beige, ...;
products with no single mappable colour are left out). IndoFashion's colour field is mostly empty, so
there the label is the one colour its title names. Accuracy over {len(COLOUR_NAMES)} names, exact name only.

{table}
"""
    write_section("photo-colour", body)


if __name__ == "__main__":
    main()
