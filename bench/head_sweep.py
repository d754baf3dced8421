"""Loss choices for the default recipe, measured on `val` only: projection heads over frozen features.

    python bench/head_sweep.py --catalog ../shared/datasets/myntra/catalog.jsonl \
        --split-file ../shared/datasets/myntra/splits.json

The default model's towers are frozen (Lite0 mean+max pooled, MiniLM mean-pooled), so only the two MLP
heads learn. This sweep computes those features once (Lite0 prefix maps from mlcore's disk cache, then the
frozen tail, for each photo and its mirror) and trains fresh heads per loss spec, the way `mlcore train`
does in cpu-fast mode (AdamW, warm-up + cosine, batch 256, flip augmentation, the epoch picked on val by the
sum of recalls), at a few seconds an epoch. Each row is reported with and without averaging a photo's
embedding with its mirror's (`image_mirror_average`); the `--block-spec` loss also with the category block
appended at each of `--block-weights` (`category_block_weight`). The `val-sweep` section of BENCHMARKS.md
holds the table; `test` is never read.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks_file import markdown_table, write_section  # noqa: E402
from mlcore.config import ModelConfig  # noqa: E402
from mlcore.data import CatalogItem, category_labels, identity_labels, load_catalog  # noqa: E402
from mlcore.evaluation import retrieval_report, selection_score  # noqa: E402
from mlcore.model import CategoryHead, create_model, with_category_block  # noqa: E402
from mlcore.projection import build_projection  # noqa: E402
from mlcore_train.feature_cache import compute_prefix_maps  # noqa: E402
from mlcore_train.losses import build_loss  # noqa: E402
from mlcore_train.trainer import category_head_terms, warmup_cosine  # noqa: E402

DEFAULT_SPECS = [
    "cmpm+cmpc",
    "cmpm+infonce",
    "cmpm+infonce+category",
    "cmpm+infonce+category_nce",
    "cmpm+infonce+2*category_nce",
    "cmpm+cmpc+category_nce",
]


@torch.no_grad()
def frozen_features(items: list[CatalogItem], config: ModelConfig) -> dict[str, torch.Tensor]:
    """Pooled Lite0 features of each photo and of its mirrored map, and MiniLM's pooled title features."""
    model = create_model(config).eval()
    tower = model.image_tower
    maps = compute_prefix_maps(tower, [item.image for item in items], 64, progress=True)

    def pooled(batch_maps: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [tower.pooled_features(batch_maps[s : s + 256].float()) for s in range(0, len(batch_maps), 256)]
        )

    token_ids = model.tokenizer.encode_ids([item.title for item in items])
    titles = []
    for start in range(0, len(token_ids), 256):
        tokens = model.tokenizer.pad(token_ids[start : start + 256])
        titles.append(model.text_tower.pooled_features(tokens.token_ids, tokens.attention_mask))
    return {"image": pooled(maps), "mirrored": pooled(maps.flip(-1)), "text": torch.cat(titles)}


def take_step(terms: dict[str, torch.Tensor], optimizer, scheduler, parameters: list) -> None:
    """One optimiser step on the sum of the loss terms, gradients clipped as `mlcore train` clips them."""
    total = sum(terms.values())
    optimizer.zero_grad()
    total.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 5.0)
    optimizer.step()
    scheduler.step()


def train_heads(
    spec: str,
    train_items: list[CatalogItem],
    train_features: dict[str, torch.Tensor],
    val_items: list[CatalogItem],
    val_features: dict[str, torch.Tensor],
    epochs: int,
    seed: int = 0,
    block_weights: tuple[float, ...] = (),
) -> dict[str, dict]:
    """Best val report (by the sum of recalls) with plain and with mirror-averaged photo embeddings, and
    for each of `block_weights` with the category block appended to the mirror-averaged ones (the head
    trained beside the projections on detached embeddings, as `mlcore train` does)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    labels = torch.tensor(identity_labels(train_items, "title"))
    categories = torch.tensor(category_labels(train_items))
    loss_fn = build_loss(spec, int(labels.max()) + 1, 512, int(categories.max()) + 1)
    image_head = nn.Sequential(
        nn.Dropout(0.1), build_projection(train_features["image"].shape[1], 512, 2048, 0.2)
    )
    text_head = build_projection(train_features["text"].shape[1], 512, 2048, 0.2)
    category_head = CategoryHead(int(categories.max()) + 1, 512)
    parameters = [*image_head.parameters(), *text_head.parameters(), *loss_fn.parameters()]
    if block_weights:
        parameters += list(category_head.parameters())
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": 0.05},
            {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=1e-3,
    )
    batch_size = 256
    steps = math.ceil(len(train_items) / batch_size) * epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps, 0.05))
    names = ["plain", "mirror-averaged", *[f"mirror-averaged + category block w={w}" for w in block_weights]]
    best: dict[str, tuple[float, dict]] = {name: (-math.inf, {}) for name in names}
    for epoch in range(1, epochs + 1):
        image_head.train(), text_head.train(), loss_fn.train()
        order = list(range(len(train_items)))
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            index = torch.tensor(order[start : start + batch_size])
            if len(index) < 2:
                continue
            flip = torch.rand(len(index)) < 0.5
            photos = torch.where(
                flip[:, None], train_features["mirrored"][index], train_features["image"][index]
            )
            image_embeddings = image_head(photos)
            text_embeddings = text_head(train_features["text"][index])
            terms = loss_fn(image_embeddings, text_embeddings, labels[index], categories[index])
            if block_weights:
                terms.update(
                    category_head_terms(category_head, image_embeddings, text_embeddings, categories[index])
                )
            take_step(terms, optimizer, scheduler, parameters)
        image_head.eval(), text_head.eval(), category_head.eval()
        with torch.no_grad():
            texts = F.normalize(text_head(val_features["text"]), dim=-1)
            plain = F.normalize(image_head(val_features["image"]), dim=-1)
            mirrored = F.normalize(image_head(val_features["mirrored"]), dim=-1)
            averaged = F.normalize(plain + mirrored, dim=-1)
            variants = [("plain", plain, texts), ("mirror-averaged", averaged, texts)]
            for weight in block_weights:
                variants.append(
                    (
                        f"mirror-averaged + category block w={weight}",
                        with_category_block(averaged, category_head, weight),
                        with_category_block(texts, category_head, weight),
                    )
                )
            for name, photos, titles in variants:
                report = retrieval_report(photos.numpy(), titles.numpy(), val_items)
                report["epoch"] = epoch
                if selection_score(report) > best[name][0]:
                    best[name] = (selection_score(report), report)
    return {name: report for name, (_, report) in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--split-file", required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--specs", default=",".join(DEFAULT_SPECS), help="comma-separated loss specs")
    parser.add_argument(
        "--block-spec",
        default="cmpm+infonce+category_nce",
        help="the loss spec also measured with the category block (ModelConfig.category_block_weight)",
    )
    parser.add_argument("--block-weights", default="0.1,0.2,0.3,0.4", help="comma-separated block weights")
    args = parser.parse_args()
    started = time.time()
    train_items = load_catalog(args.catalog, args.split_file, "train")
    val_items = load_catalog(args.catalog, args.split_file, "val")
    default_config = json.loads(
        (Path(__file__).resolve().parent.parent / "mlcore/default_model/config.json").read_text()
    )
    config = ModelConfig.from_dict(default_config["model"])
    train_features = frozen_features(train_items, config)
    val_features = frozen_features(val_items, config)
    rows = []
    for spec in args.specs.split(","):
        row_started = time.time()
        block_weights = (
            tuple(float(w) for w in args.block_weights.split(",")) if spec == args.block_spec else ()
        )
        reports = train_heads(
            spec,
            train_items,
            train_features,
            val_items,
            val_features,
            args.epochs,
            block_weights=block_weights,
        )
        for name, report in reports.items():
            t, i = report["t2i"], report["i2t"]
            rows.append(
                [
                    f"`{spec}`",
                    name,
                    report["epoch"],
                    *[f"{t[k]:.1f}" for k in ("R@1", "R@5", "R@10")],
                    *[f"{i[k]:.1f}" for k in ("R@1", "R@5", "R@10")],
                    f"{selection_score(report):.1f}",
                    f"{report['type_p@10']:.3f}",
                    f"{report['category_p@10']:.3f}",
                ]
            )
        print(f"{spec}: {time.time() - row_started:.0f}s", *rows[-len(reports) :], sep="\n", flush=True)
    header = ["loss", "photo embedding", "best epoch", "t2i R@1", "R@5", "R@10", "i2t R@1", "R@5", "R@10"]
    header += ["recall sum", "type_p@10", "category_p@10"]
    command = "python bench/head_sweep.py " + " ".join(sys.argv[1:])
    minutes = (time.time() - started) / 60
    body = f"""## Loss choices on val (heads over the default model's frozen features)

`{command}` — {minutes:.1f} min on this machine ({torch.get_num_threads()} torch threads, CPU).
Trained on `train`, each row's epoch picked on `val` (500 products) by the sum of recalls; `test` unread.
`type_p@10` ceiling on this gallery 0.911, `category_p@10` 0.405. Recalls in percent. "category block
w=..." rows append the category head's probabilities to the mirror-averaged embeddings with that weight
(a unit vector whose cosine is (1-w) cos + w Bhattacharyya(p1, p2); `ModelConfig.category_block_weight`).

{markdown_table(header, rows)}
"""
    write_section("val-sweep", body)
    print(body)


if __name__ == "__main__":
    main()
