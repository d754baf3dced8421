"""`python -m mlcore_train train|evaluate|describe|model-card`: thin wrappers over importable functions."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path

from mlcore.config import ModelConfig, TrainingConfig
from mlcore.data import load_catalog
from mlcore.default_model import default_model_path, describe_model
from mlcore.evaluation import evaluate, format_report
from mlcore_train.model_card import examples_file_name, shop_name, write_model_card
from mlcore_train.trainer import TRAINING_MODES, train
from mlcore_train.warm_start import model_to_fine_tune


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlcore_train", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train on the train split, select on val, save a model folder")
    train.add_argument(
        "--catalog",
        required=True,
        action="append",
        help="catalog.jsonl (image paths relative to it); repeat to train on several shops at once",
    )
    train.add_argument(
        "--split-file",
        required=True,
        action="append",
        help="splits.json with train/val/test sku lists, one per --catalog, in the same order",
    )
    train.add_argument(
        "--text-variant-share",
        type=float,
        default=TrainingConfig.text_variant_share,
        help="share of pairs trained on another text of the product (attribute phrase, product text, "
        "description sentence) instead of its title",
    )
    train.add_argument(
        "--synonym-share",
        type=float,
        default=TrainingConfig.synonym_share,
        help="share of pairs trained with a garment term swapped for a synonym (mlcore.fashion_vocabulary)",
    )
    train.add_argument(
        "--resume", action="store_true", help="continue a run that stopped part way in --out (same settings)"
    )
    train.add_argument(
        "--init-from",
        help="a trained model folder to fine-tune (its architecture wins over the model options below)",
    )
    train.add_argument("--out", required=True, help="output model folder")
    train.add_argument("--mode", default=TrainingConfig.mode, choices=TRAINING_MODES)
    train.add_argument("--text-branch", default=ModelConfig.text_branch, choices=["bilstm", "bert"])
    train.add_argument("--backbone", default=ModelConfig.image_backbone)
    train.add_argument(
        "--loss",
        default=TrainingConfig.loss,
        help="names joined with +, optionally weighted: cmpm+cmpc, infonce, cmpm+infonce+2*category_nce",
    )
    train.add_argument("--epochs", type=int, default=TrainingConfig.epochs)
    train.add_argument("--batch-size", type=int, default=TrainingConfig.batch_size)
    train.add_argument("--lr", type=float, default=TrainingConfig.learning_rate)
    train.add_argument("--pretrained-lr", type=float, default=TrainingConfig.pretrained_learning_rate)
    train.add_argument("--image-trainable-blocks", type=int, default=ModelConfig.image_trainable_blocks)
    train.add_argument("--text-trainable-layers", type=int, default=ModelConfig.text_trainable_layers)
    train.add_argument(
        "--projection-hidden-dim",
        type=int,
        default=ModelConfig.projection_hidden_dim,
        help="0: linear projection heads; > 0: two-layer MLP heads of this width",
    )
    train.add_argument("--image-pooling", default=ModelConfig.image_pooling, choices=["mean", "mean+max"])
    train.add_argument(
        "--image-mirror-average",
        action=argparse.BooleanOptionalAction,
        default=ModelConfig.image_mirror_average,
        help="embed a photo as the mean of its own and its mirrored last feature map's embeddings",
    )
    train.add_argument(
        "--category-block-weight",
        type=float,
        default=ModelConfig.category_block_weight,
        help="share (0..1) of the retrieval embedding given to the category head's probabilities "
        "over the training items' article types; 0: none",
    )
    train.add_argument(
        "--further-photo-share",
        type=float,
        default=TrainingConfig.further_photo_share,
        help="share of the pairs of a product with further photos (the catalogue's `images`) that train "
        "on one of them instead of its main photo",
    )
    train.add_argument(
        "--category-block-weights",
        type=_weights,
        default=[],
        metavar="W,W,...",
        help="after training, choose the category block weight among these on val (recall sum + "
        "100 x type_p@10); the model keeps --category-block-weight when none scores higher",
    )
    train.add_argument("--weight-decay", type=float, default=TrainingConfig.weight_decay)
    train.add_argument("--identity", default=TrainingConfig.identity, choices=["title", "sku"])
    train.add_argument("--seed", type=int, default=TrainingConfig.seed)
    train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    train.add_argument(
        "--evaluate-test",
        action="store_true",
        help="after training, evaluate the selected model once on the test split",
    )

    evaluate = commands.add_parser("evaluate", help="evaluate a model folder on one split")
    evaluate.add_argument("--catalog", required=True)
    evaluate.add_argument("--split-file", required=True)
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--model", default=None, help="model folder (default: the committed default model)")
    evaluate.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    evaluate.add_argument("--grid", default=None, help="write a PNG of top-5 photos for a few title queries")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as one JSON line, last")
    evaluate.add_argument(
        "--record",
        action="store_true",
        help="store the report in the model folder's metrics.json under the split's name (with a grid PNG), "
        "for its model card: the once-only test evaluation of a model chosen on val",
    )
    evaluate.add_argument(
        "--shop",
        default=None,
        help="with --record: store the report as this shop's, beside the other shops' (a model trained on "
        "several shops, or measured on one it never saw)",
    )

    card = commands.add_parser("model-card", help="write MODEL_CARD.md from a model folder's metrics.json")
    card.add_argument("--model", required=True)
    card.add_argument("--notes", default="", help="markdown appended to the card (e.g. caveats)")

    describe = commands.add_parser("describe", help="print a model folder's config and recorded metrics")
    describe.add_argument("--model", default=None)
    return parser


def _record_evaluation(folder: Path, split: str, report: dict, seconds: float, shop: str | None) -> None:
    metrics_path = folder / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    if shop:
        metrics.setdefault(f"{split}_by_shop", {})[shop] = {**report, "eval_time_s": round(seconds, 1)}
    else:
        metrics[split] = report
        metrics[f"{split}_eval_time_s"] = round(seconds, 1)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")


def _configs_from_args(args: argparse.Namespace) -> tuple[ModelConfig, TrainingConfig]:
    model_config = ModelConfig(
        text_branch=args.text_branch,
        image_backbone=args.backbone,
        image_trainable_blocks=args.image_trainable_blocks,
        text_trainable_layers=args.text_trainable_layers,
        projection_hidden_dim=args.projection_hidden_dim,
        image_pooling=args.image_pooling,
        image_mirror_average=args.image_mirror_average,
        category_block_weight=args.category_block_weight,
    )
    training_config = TrainingConfig(
        mode=args.mode,
        loss=args.loss,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        pretrained_learning_rate=args.pretrained_lr,
        identity=args.identity,
        seed=args.seed,
        device=args.device,
        weight_decay=args.weight_decay,
        text_variant_share=args.text_variant_share,
        synonym_share=args.synonym_share,
        category_block_weights=args.category_block_weights,
        further_photo_share=args.further_photo_share,
    )
    return model_config, training_config


def _weights(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"a comma-separated list of numbers, not {text!r}") from error


def _load_shops(args: argparse.Namespace, split: str) -> dict[str, list]:
    """Each shop's items of the split, by shop name (its catalogue's folder), in the order given."""
    if len(args.catalog) != len(args.split_file):
        raise SystemExit("give one --split-file per --catalog, in the same order")
    shops: dict[str, list] = {}
    for catalog, split_file in zip(args.catalog, args.split_file, strict=True):
        shops.setdefault(shop_name(catalog), []).extend(load_catalog(catalog, split_file, split))
    return shops


def _joined(shops: dict[str, list]) -> list:
    return [item for items in shops.values() for item in items]


def run_train(args: argparse.Namespace, command: str) -> int:
    """Train on the train split, select on val; with --evaluate-test, evaluate the chosen model on test once.
    The command line is recorded in metrics.json for the model card."""
    model_config, training_config = _configs_from_args(args)
    train_shops, val_shops = _load_shops(args, "train"), _load_shops(args, "val")
    train_items, val_items = _joined(train_shops), _joined(val_shops)
    model = None
    if args.init_from:
        model = model_to_fine_tune(args.init_from, train_items)
        model_config = model.config
    result = train(
        train_items, val_items, args.out, model_config, training_config, model=model, resume=args.resume
    )
    metrics_path = Path(args.out) / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["command"] = command
    metrics["trained_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    metrics["shops"] = [
        {"name": name, "train": len(items), "val": len(val_shops.get(name, []))}
        for name, items in train_shops.items()
    ]
    if args.evaluate_test:
        started = time.time()
        test_items = _joined(_load_shops(args, "test"))
        metrics["test"] = evaluate(
            args.out, test_items, device=args.device, grid_path=Path(args.out) / "retrieval_examples.png"
        )
        metrics["test_eval_time_s"] = round(time.time() - started, 1)
        print(format_report(metrics["test"]))
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"best epoch {result.best_epoch}, val:\n{format_report(result.best_val_metrics)}")
    print(f"saved to {args.out} in {result.wall_time_s:.0f}s")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    model = args.model or default_model_path()
    items = load_catalog(args.catalog, args.split_file, args.split)
    if args.record and not (Path(model) / "metrics.json").exists():
        raise SystemExit(
            f"{Path(model) / 'metrics.json'} does not exist: "
            "--record needs a model folder written by `python -m mlcore_train train`"
        )
    grid = args.grid or (Path(model) / examples_file_name(args.shop) if args.record else None)
    started = time.time()
    report = evaluate(model, items, device=args.device, grid_path=grid)
    if args.record:
        _record_evaluation(Path(model), args.split, report, time.time() - started, args.shop)
    print(format_report(report))
    if args.json:
        print(json.dumps(report))
    return 0


def run_model_card(args: argparse.Namespace) -> int:
    print(write_model_card(args.model, notes=args.notes))
    return 0


def run_describe(args: argparse.Namespace) -> int:
    print(json.dumps(describe_model(args.model), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if args.command == "train":
        return run_train(args, "python -m mlcore_train " + " ".join(sys.argv[1:] if argv is None else argv))
    if args.command == "evaluate":
        return run_evaluate(args)
    if args.command == "model-card":
        return run_model_card(args)
    return run_describe(args)
