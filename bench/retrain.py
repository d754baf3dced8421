"""Wall time of `manage.py retrain` on the Myntra catalogue in cpu-fast mode, by stage.

    python bench/retrain.py [--catalog ../shared/datasets/myntra/catalog.jsonl] [--split-file ...]
        [--epochs N] [--no-activate] [--text-variant-share S]

Runs the same services as the command, in the benchmark database (the catalogue is imported there
first if it is missing): train on the split's `train` products, measure on its `val` products against
the active model, embed every product with the new version, and switch over if it is better.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import django_setup
from benchmarks_file import markdown_table, write_section

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "myntra"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalog", type=Path, default=DATASET / "catalog.jsonl")
    parser.add_argument("--split-file", type=Path, default=DATASET / "splits.json")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--no-activate", action="store_true")
    parser.add_argument(
        "--text-variant-share",
        type=float,
        help="the retrain's text variant share (default: PRODUCT_SEARCH_RETRAIN_TEXT_VARIANT_SHARE)",
    )
    args = parser.parse_args()

    django_setup.setup()
    from catalog.importing import catalog_import
    from catalog.models import Product
    from lifecycle.retraining import RetrainOptions, retrain_prepare, retrain_run

    if Product.objects.count() < 9000:
        catalog_import(path=args.catalog)
    # What a shop has before it retrains: the shipped model active and the catalogue embedded with it,
    # so the photos' trunk features are stored (a catalogue embedded before the store existed gets
    # them here). Untimed.
    from lifecycle.default_model import default_model_install
    from lifecycle.model_versions import model_version_activate
    from lifecycle.photo_features import photo_features_backfill, photo_features_storage

    installed = default_model_install()
    if installed.active != installed.version:
        print(f"Activating the shipped {installed.version.name} (was {installed.active})", flush=True)
        model_version_activate(version=installed.version)
    backfilled = photo_features_backfill(version=installed.version)
    print(f"Photo features stored for {backfilled} more photos (before timing)", flush=True)
    storage = photo_features_storage()
    options = RetrainOptions(
        split_file=str(args.split_file),
        mode="cpu-fast",
        epochs=args.epochs,
        device="auto",
        activate=not args.no_activate,
        text_variant_share=args.text_variant_share,
    )
    marks: dict[str, float] = {}
    started = time.perf_counter()
    version = retrain_prepare(options=options)

    def log(line: str) -> None:
        print(line, flush=True)
        if line.startswith("Training "):
            marks["training started"] = time.perf_counter()
        if line.startswith("Held-out R@1 (t2i / i2t): new"):
            marks["trained and measured"] = time.perf_counter()
        if line.startswith("Embedding the catalogue"):
            marks["embedding started"] = time.perf_counter()

    outcome = retrain_run(version=version, options=options, log=log, show_progress=True)
    finished = time.perf_counter()
    version.refresh_from_db()
    metrics = version.metrics
    trained = marks.get("trained and measured", finished)
    embedding = marks.get("embedding started", trained)
    training_metrics = json.loads((Path(version.artifact_path) / "metrics.json").read_text())
    feature_seconds = training_metrics.get("feature_time_s", 0.0)
    rows = [
        [
            "prepare (items from the catalogue, version row)",
            f"{(marks.get('training started', started) - started) / 60:.1f}",
        ],
        ["train: photo features (read from the store) and text features", f"{feature_seconds / 60:.1f}"],
        ["train: epochs and val selection", f"{(metrics['training_seconds'] - feature_seconds) / 60:.1f}"],
        ["train + measure new and active on held-out", f"{(trained - started) / 60:.1f}"],
        [
            f"embed {Product.objects.filter(is_active=True).count()} products + HNSW",
            f"{(finished - embedding) / 60:.1f}",
        ],
        ["total", f"{(finished - started) / 60:.1f}"],
    ]
    held_out, active = metrics["held_out"], metrics.get("active_on_held_out")
    quality = [
        [
            "new version",
            held_out["t2i"]["R@1"],
            held_out["t2i"]["R@10"],
            held_out["i2t"]["R@1"],
            held_out["i2t"]["R@10"],
        ]
    ]
    if active:
        quality.append(
            [
                f"active ({metrics['active_version']})",
                active["t2i"]["R@1"],
                active["t2i"]["R@10"],
                active["i2t"]["R@1"],
                active["i2t"]["R@10"],
            ]
        )
    verdict = "activated" if outcome.activated else "not activated"
    write_section(
        "retrain",
        "## Retrain wall time (cpu-fast)\n\n"
        f"`python bench/retrain.py` (= `manage.py retrain --catalog catalog.jsonl --split-file splits.json`, "
        f"products already imported, the shipped model active): {held_out['gallery']} held-out `val` products, "
        f"{os.cpu_count()} CPU cores, no GPU; text variant share "
        f"{json.loads((Path(version.artifact_path) / 'config.json').read_text())['training']['text_variant_share']}. "
        f"Outcome: {verdict} ({outcome.reason}).\n\n"
        f"Photo features were already stored, as after embedding: {storage['rows']} photos, "
        f"{storage['bytes_per_photo'] / 1024:.1f} KiB a photo ({storage['bytes'] / 2**20:.0f} MiB in all).\n\n"
        + markdown_table(["stage", "minutes"], rows)
        + "\n\nHeld-out (val) retrieval, same products for both:\n\n"
        + markdown_table(
            ["model", "t2i R@1", "t2i R@10", "i2t R@1", "i2t R@10"],
            [[row[0], *(f"{value:.1f}" for value in row[1:])] for row in quality],
        )
        + "\n",
    )


if __name__ == "__main__":
    main()
