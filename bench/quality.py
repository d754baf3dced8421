"""Retrieval quality on the Myntra catalogue: CMPM+CMPC with each text branch, the baseline losses on the same
trainer, and an untrained floor. Every row trains on `train`, picks its epoch on `val`, and is evaluated once
on `test` (1,000 products, title queries). Writes the `quality` section of BENCHMARKS.md.

    python bench/quality.py --catalog /work/shared/datasets/myntra/catalog.jsonl \
        --split-file /work/shared/datasets/myntra/splits.json

All trained rows share the cached EfficientNet-Lite0 prefix maps (mlcore_train.feature_cache) and the frozen
MiniLM title features, and train only their heads (and the LSTM for `bilstm`) with one schedule, so they
differ by the loss alone; each takes a few minutes on 2 CPU cores. The last row evaluates the committed
default model (trained by `python -m mlcore_train train`, see its MODEL_CARD.md) on the same test gallery.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks_file import markdown_table, write_section  # noqa: E402
from mlcore.checkpoint import load_checkpoint  # noqa: E402
from mlcore.config import ModelConfig, TrainingConfig  # noqa: E402
from mlcore.data import load_catalog  # noqa: E402
from mlcore.default_model import DEFAULT_MODEL_PATH  # noqa: E402
from mlcore.device import resolve_device  # noqa: E402
from mlcore.model import DualEncoder, create_model  # noqa: E402
from mlcore_train.feature_sources import ImageFeatureSource, TextFeatureSource  # noqa: E402
from mlcore_train.trainer import train, validate  # noqa: E402

BASELINES = ["triplet", "contrastive", "order", "corrnet", "infonce"]
LOSS_LABELS = {
    "cmpm+cmpc": "CMPM+CMPC",
    "triplet": "VSE++ triplet (hardest negatives)",
    "contrastive": "Siamese contrastive",
    "order": "order embeddings",
    "corrnet": "CorrNet",
    "infonce": "symmetric InfoNCE",
    "cmpm+cmpc+category_nce": "CMPM+CMPC + category InfoNCE",
    "cmpm+infonce": "CMPM+InfoNCE",
    "cmpm+infonce+category_nce": "CMPM+InfoNCE + category InfoNCE",
}


def evaluate_on_split(model: DualEncoder, items, device: torch.device) -> dict:
    config = TrainingConfig(augment=False)
    images = ImageFeatureSource(
        model, items, config, device, cache=True, rng=random.Random(0), progress=False
    )
    texts = TextFeatureSource(model, items, device, cache=True)
    return validate(images, texts, items)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--split-file", required=True)
    parser.add_argument("--baseline-epochs", type=int, default=15, help="epochs of every trained row")
    parser.add_argument("--default-model", default=str(DEFAULT_MODEL_PATH))
    parser.add_argument("--out", default="bench/out/quality")
    parser.add_argument("--rows", default=None, help="comma-separated subset of row ids, for quick checks")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.time()
    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_items = load_catalog(args.catalog, args.split_file, "train")
    val_items = load_catalog(args.catalog, args.split_file, "val")
    test_items = load_catalog(args.catalog, args.split_file, "test")

    # Every trained row uses the default model's recipe apart from its loss (and text branch): frozen
    # EfficientNet-Lite0 (mean+max pooled) and frozen MiniLM features, 2,048-wide MLP heads, batch 256, AdamW
    # with weight decay 0.05, the epoch picked on val. So the rows differ by the loss alone.
    heads = {
        "image_trainable_blocks": 0,
        "projection_hidden_dim": 2048,
        "image_pooling": "mean+max",
        "image_mirror_average": True,
    }
    frozen_text = ModelConfig(text_branch="bert", text_trainable_layers=0, **heads)
    short = f"{args.baseline_epochs} ep"

    def schedule(loss: str) -> TrainingConfig:
        return TrainingConfig(loss=loss, epochs=args.baseline_epochs, batch_size=256, weight_decay=0.05)

    rows: list[tuple[str, str, str, ModelConfig | None, TrainingConfig | None]] = [
        ("floor", "untrained random projections", "-", None, None),
        (
            "cmpm-cmpc-bilstm",
            "CMPM+CMPC",
            "bilstm",
            ModelConfig(text_branch="bilstm", **heads),
            schedule("cmpm+cmpc"),
        ),
        ("cmpm-cmpc-bert-frozen", "CMPM+CMPC", "bert (frozen)", frozen_text, schedule("cmpm+cmpc")),
        *[
            (f"{name}-bert-frozen", LOSS_LABELS[name], "bert (frozen)", frozen_text, schedule(name))
            for name in BASELINES
        ],
        *[
            (
                f"{loss.replace('+', '-')}-bert-frozen",
                LOSS_LABELS[loss],
                "bert (frozen)",
                frozen_text,
                schedule(loss),
            )
            for loss in ("cmpm+cmpc+category_nce", "cmpm+infonce", "cmpm+infonce+category_nce")
        ],
        ("default-model", "default model (see its card)", "bert", None, None),
    ]
    wanted = set(args.rows.split(",")) if args.rows else None
    results_path = out / "results.json"
    # With --rows, rows measured by an earlier full run are kept and only the named ones are replaced.
    earlier = json.loads(results_path.read_text()) if wanted and results_path.exists() else []
    results = [r for r in earlier if r["row"] not in wanted] if wanted else []
    row_order = [row[0] for row in rows]
    for row_id, loss_label, branch, model_config, training_config in rows:
        if wanted and row_id not in wanted:
            continue
        row_started = time.time()
        row_schedule = f"{training_config.epochs} ep" if training_config else "-"
        if row_id == "floor":
            torch.manual_seed(0)
            model = create_model(frozen_text).to(device)
        elif row_id == "default-model":
            model = load_checkpoint(args.default_model, device)
            metrics = json.loads((Path(args.default_model) / "metrics.json").read_text())
            loss_label = f"default model: {metrics['training']['loss']}"
            if model.config.category_block_weight:
                loss_label += f", category block w={model.config.category_block_weight:g}"
            row_schedule = f"{metrics.get('epochs_run', '?')} ep (best {metrics.get('best_epoch', '?')})"
        else:
            result = train(
                train_items, val_items, out / row_id, model_config, training_config, show_progress=False
            )
            model = load_checkpoint(out / row_id, device)
            row_schedule = f"{training_config.epochs} ep (best {result.best_epoch})"
        test = evaluate_on_split(model, test_items, device)
        seconds = time.time() - row_started
        logging.info(
            "%s: t2i R@1 %.2f R@10 %.2f i2t R@1 %.2f R@10 %.2f (%.0fs)",
            row_id,
            test["t2i"]["R@1"],
            test["t2i"]["R@10"],
            test["i2t"]["R@1"],
            test["i2t"]["R@10"],
            seconds,
        )
        results.append(
            {
                "row": row_id,
                "loss": loss_label,
                "text": branch,
                "schedule": row_schedule,
                "test": test,
                "seconds": round(seconds, 1),
            }
        )
        results.sort(key=lambda r: row_order.index(r["row"]))
        results_path.write_text(json.dumps(results, indent=2) + "\n")

    wall = time.time() - started
    header = [
        "loss",
        "text branch",
        "schedule",
        "t2i R@1",
        "R@5",
        "R@10",
        "medr",
        "mAP@10",
        "i2t R@1",
        "R@5",
        "R@10",
        "medr",
        "mAP@10",
        "type_p@10",
        "category_p@10",
        "row s",
    ]
    table = []
    for r in results:
        t, i = r["test"]["t2i"], r["test"]["i2t"]
        table.append(
            [
                r["loss"],
                r["text"],
                r["schedule"],
                *[f"{t[k]:.1f}" for k in ("R@1", "R@5", "R@10")],
                f"{t['medr']:.0f}",
                f"{t['mAP@10']:.1f}",
                *[f"{i[k]:.1f}" for k in ("R@1", "R@5", "R@10")],
                f"{i['medr']:.0f}",
                f"{i['mAP@10']:.1f}",
                f"{r['test']['type_p@10']:.3f}",
                f"{r['test']['category_p@10']:.3f}",
                f"{r['seconds']:.0f}",
            ]
        )
    ceiling = results[0]["test"]["category_p@10_ceiling"] if results else float("nan")
    command = "python bench/quality.py " + " ".join(sys.argv[1:])
    missing = [row_id for row_id in row_order if row_id not in {r["row"] for r in results}]
    missing_note = (
        f"\nRows not measured yet (run them with `--rows {','.join(missing)}`): {', '.join(missing)}.\n"
        if missing
        else ""
    )
    body = f"""## Retrieval quality (Myntra test, {results[0]["test"]["gallery"] if results else "?"}-product gallery)

`{command}` — {wall / 60:.1f} min wall time for this invocation (per-row seconds in the last column) on this machine ({torch.get_num_threads()} torch threads, CPU).
Trained on `train` (8,083 products), epoch chosen on `val` (500), evaluated once on `test`. Relevant = same
product or same title (case-insensitive). Recalls and mAP@10 in percent; `category_p@10` ceiling on this
gallery: {ceiling:.3f} (type_p@10: 0.950). Every trained row: frozen EfficientNet-Lite0 (ImageNet, mean+max
pooled, photo and mirror embeddings averaged) and frozen MiniLM (or a trained BiLSTM on MiniLM's word vectors), 2,048-wide MLP heads, batch 256,
{short} with the best val epoch kept; only the loss differs. The last row is the committed default model,
measured here on the same cached (float16) prefix maps, so it can differ by a few tenths from its card's
test figures, which run the full photo pipeline.
Order embeddings are ranked by cosine like every other row, not by their order-violation score.

{markdown_table(header, table)}
{missing_note}"""
    write_section("quality", body)
    print(body)


if __name__ == "__main__":
    main()
