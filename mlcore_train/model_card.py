"""MODEL_CARD.md generated from a model folder's metrics.json, so no figure in it is typed by hand."""

from __future__ import annotations

import datetime as dt
import json
import shlex
from pathlib import Path

DATA_ATTRIBUTION = (
    '"Fashion Product Images" dataset, Param Aggarwal, Kaggle; product data and photos by Myntra.'
)
# By shop name (a catalogue's folder under shared/datasets), for the shops a model was trained or measured on.
SHOP_ATTRIBUTIONS = {
    "myntra": DATA_ATTRIBUTION,
    "indofashion": "IndoFashion dataset, Pranjal Singh Rajput and Shivangi Aneja; listings from Amazon India "
    "and Flipkart.",
    "luma": '"Magento 2 sample data (Luma), Copyright (c) Magento, Inc. (Adobe), licensed under OSL-3.0 '
    "(photos) and OSL-3.0/AFL-3.0 (product data); photos resized and product data converted by this "
    'project, by a conversion script."',
}


def shop_name(catalog_path: str | Path) -> str:
    """A catalogue's shop name: the folder its catalog.jsonl is in."""
    return Path(catalog_path).resolve().parent.name


def examples_file_name(shop: str | None = None) -> str:
    """The retrieval grid a recorded evaluation writes into the model folder: one per shop when named."""
    return f"retrieval_examples_{shop}.png" if shop else "retrieval_examples.png"


def _trained_shops(metrics: dict) -> list[str]:
    """The shops a model was trained on: as recorded, or read from the recorded command's --catalog."""
    if metrics.get("shops"):
        return [shop["name"] for shop in metrics["shops"]]
    words = shlex.split(metrics.get("command", ""))
    return [shop_name(value) for flag, value in zip(words, words[1:], strict=False) if flag == "--catalog"]


def _metrics_table(report: dict) -> str:
    lines = ["| direction | R@1 | R@5 | R@10 | medr | meanr | mAP@10 |", "|---|---|---|---|---|---|---|"]
    for direction, label in (("t2i", "title -> photo"), ("i2t", "photo -> title")):
        m = report[direction]
        lines.append(
            f"| {label} | {m['R@1']:.2f} | {m['R@5']:.2f} | {m['R@10']:.2f} | {m['medr']:.1f} | "
            f"{m['meanr']:.1f} | {m['mAP@10']:.2f} |"
        )
    lines.append("")
    lines.append(
        f"type_p@10 {report['type_p@10']:.3f}; category_p@10 {report['category_p@10']:.3f} "
        f"(ceiling on this gallery {report['category_p@10_ceiling']:.3f}); "
        f"gallery {report['gallery']} products."
    )
    return "\n".join(lines)


def _projection_text(model: dict) -> str:
    hidden = model.get("projection_hidden_dim", 0)
    return f"MLP projection ({hidden} hidden)" if hidden else "linear projection"


def _image_tower_text(model: dict) -> str:
    blocks = model["image_trainable_blocks"]
    trained = "frozen trunk" if blocks == 0 else f"last {blocks} MBConv block(s) + conv head trained"
    pooling = model.get("image_pooling", "mean").replace("+", " and ")
    mirror = (
        "; a photo's embedding averages those of its last feature map and its mirror"
        if model.get("image_mirror_average")
        else ""
    )
    return (
        f"{model['image_backbone']} (ImageNet weights), {model['image_size']}px white-padded photos, "
        f"{trained}, {pooling} pooling, {_projection_text(model)}{mirror}"
    )


def _text_tower_text(model: dict) -> str:
    if model["text_branch"] != "bert":
        return f"bilstm (bidirectional LSTM over MiniLM WordPiece embeddings), {_projection_text(model)}"
    layers = model["text_trainable_layers"]
    trained = "frozen" if layers == 0 else f"last {layers} layer(s) trained"
    return f"bert (all-MiniLM-L6-v2, mean-pooled, {trained}), {_projection_text(model)}"


def _retrieval_embedding_text(model: dict) -> str:
    weight = model.get("category_block_weight", 0.0)
    if not weight:
        return f"the unit {model['embed_dim']}-d joint embedding"
    names = model["category_names"]
    return (
        f"the unit {model['embed_dim']}-d joint embedding followed by a category block of {len(names)} "
        f"article types with weight {weight} ({model['embed_dim'] + len(names)} dimensions; cosine = "
        f"{1 - weight:g} x joint cosine + {weight:g} x Bhattacharyya coefficient of the two items' "
        "category probabilities from a cosine classifier on the joint embedding, trained beside it on "
        "detached embeddings)"
    )


def _block_choice_text(metrics: dict) -> str:
    choice = metrics.get("category_block_choice")
    if not choice:
        return ""
    scores = ", ".join(f"{row['weight']:g}: {row['score']:.1f}" for row in choice["candidates"])
    return (
        f"; the weight was chosen on val after training (trained with {choice['trained_weight']:g}; "
        f"recall sum + 100 x type_p@10 by weight: {scores})"
    )


# Training commands moved from `python -m mlcore` to `python -m mlcore_train`; a folder trained before that
# recorded the old name, which no longer runs.
OLD_COMMAND_PREFIX, COMMAND_PREFIX = "python -m mlcore ", "python -m mlcore_train "


def _command_text(metrics: dict) -> str:
    command = metrics.get("command", "(not recorded)")
    if command.startswith(OLD_COMMAND_PREFIX):
        return COMMAND_PREFIX + command[len(OLD_COMMAND_PREFIX) :]
    return command


def _data_text(metrics: dict, shops: list[str]) -> str:
    measured = [shop for shop in metrics.get("test_by_shop", {}) if shop not in shops]
    if len(shops) <= 1 and not measured:
        shop = shops[0] if shops else "myntra"
        attribution = SHOP_ATTRIBUTIONS.get(shop, "(none recorded)")
        return (
            f"{'Myntra' if shop == 'myntra' else shop} catalogue, fixed splits by sku hash: trained on "
            f"`train` ({metrics['train_products']} products), model chosen on `val` "
            f"({metrics['val_products']}), evaluated once on `test`.\nAttribution: {attribution}"
        )
    if len(shops) == 1:
        trained = (
            f"Trained on the `train` split of {shops[0]} ({metrics['train_products']} products), model "
            f"chosen on its `val` ({metrics['val_products']}), evaluated once on its `test`"
        )
    else:
        trained = (
            f"Trained on the `train` splits of {', '.join(shops)} ({metrics['train_products']} products in "
            f"all), model chosen on their `val` splits together ({metrics['val_products']}), evaluated once "
            "on each shop's `test`"
        )
    lines = [
        trained + (f", and on the `test` of {', '.join(measured)}, never trained on." if measured else "."),
        "",
    ]
    lines += [f"- {shop}: {SHOP_ATTRIBUTIONS.get(shop, '(none recorded)')}" for shop in shops + measured]
    return "\n".join(lines)


def _test_seconds(metrics: dict) -> float:
    if "test_eval_time_s" in metrics:
        return metrics["test_eval_time_s"]
    by_shop = metrics.get("test_by_shop") or {}
    return sum(report.get("eval_time_s", 0.0) for report in by_shop.values()) if by_shop else float("nan")


def _test_text(metrics: dict, shops: list[str], folder: Path) -> str:
    by_shop = metrics.get("test_by_shop")
    if not by_shop:
        return _metrics_table(metrics["test"]) if metrics.get("test") else "(not evaluated)"
    reports = {shop: (report, examples_file_name(shop)) for shop, report in by_shop.items()}
    if len(shops) == 1 and shops[0] not in reports and metrics.get("test"):
        # A one-shop model's own test report is kept under "test" (what the installed version shows).
        reports = {shops[0]: (metrics["test"], examples_file_name()), **reports}
    sections = []
    for shop, (report, grid) in reports.items():
        seen = "trained on its `train`" if shop in shops else "never trained on"
        shown = f"\n\n![top photos for a few {shop} titles]({grid})" if (folder / grid).exists() else ""
        sections.append(f"### {shop} ({seen})\n\n{_metrics_table(report)}{shown}")
    return "\n\n".join(sections)


def write_model_card(folder: str | Path, notes: str = "") -> Path:
    folder = Path(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    model = config["model"]
    training = metrics["training"]
    size_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
    # A clone gives files the time of the checkout, so the recorded time wins over the weights' file time.
    trained_on = (
        dt.datetime.fromisoformat(metrics["trained_at"])
        if "trained_at" in metrics
        else dt.datetime.fromtimestamp((folder / "model.safetensors").stat().st_mtime, dt.UTC)
    )
    shops = _trained_shops(metrics)
    card = f"""# Model card: {config.get("name", folder.name)}

Two-tower product retrieval model (title <-> photo) in one joint {model["embed_dim"]}-d space.

- Image tower: {_image_tower_text(model)}.
- Text tower: {_text_tower_text(model)}.
- Loss: {training["loss"]}; identity classes: {training["identity"]} (same title = same product).
- Retrieval embedding: {_retrieval_embedding_text(model)}{_block_choice_text(metrics)}.
- Training mode: {training["mode"]}; batch {training["batch_size"]}; AdamW lr {training["learning_rate"]}
  (pretrained parts {training["pretrained_learning_rate"]}), weight decay {training["weight_decay"]},
  warm-up + cosine; {metrics["epochs_run"]} epoch(s) run, epoch {metrics["best_epoch"]} selected on val.
- Weights: float16 safetensors (the WordPiece table and large projection matrices int8 with a scale per
  row); folder size {size_mb:.1f} MB.

## Data

{_data_text(metrics, shops)}

## Command

```
{_command_text(metrics)}
```

Trained {trained_on:%Y-%m-%d %H:%M} UTC. Training wall time {metrics["training_wall_time_s"] / 60:.1f} min
(of which {metrics["feature_time_s"]:.0f} s loading cached image features / MiniLM inputs); test evaluation
{_test_seconds(metrics):.0f} s (full photo pipeline, not the cache).

## Validation metrics (selected epoch)

{_metrics_table(metrics["val"])}

## Test metrics (evaluated once)

{_test_text(metrics, shops, folder)}

Targets from the project issue: R@1 >= 50 and R@10 >= 90 in both directions, type_p@10 >= 0.9.
Published Deep CMPL on comparable data: R@1 31.28, R@10 82.70.

## Training curves

![training curves](training_curves.png)

{notes}
"""
    path = folder / "MODEL_CARD.md"
    path.write_text(card)
    return path
