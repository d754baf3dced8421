"""Which training data and texts make the default model transfer to shops it never saw, measured on choice
splits only: projection heads over frozen features, as `bench/head_sweep.py` trains them.

    python bench/transfer_sweep.py
    python bench/transfer_sweep.py --trunks efficientnet-lite0:224,efficientnet-lite2:260 \
        --rows myntra:0.3:0,indofashion:0:0 --section trunk-comparison

Each row trains fresh heads (the image trunk's mean+max pooled photo features, the default model's
Lite0 unless `--trunks` names others, and MiniLM's pooled title features, both frozen; loss
`cmpm+infonce+category_nce`; category block 0.1; 30 epochs) on the `train` split of the shops it names,
with a share of the pairs trained on the title with a garment term swapped for a synonym
(`synonym_share`, mlcore/fashion_vocabulary.py) and a share on the product's other texts
(`text_variant_share`). It is then measured, at its last epoch, on:
- Myntra and IndoFashion `val` (500 products each): title -> photo R@1 / R@10 (percent) and type_p@10;
- Luma `train` (339 products), the shop never trained on, standing in for a new shop: its titles
  (relevant = the same style, `styles.json`) and attribute phrases, through mlcore.shop_queries.
`test` is never read. The `transfer-sweep` section of BENCHMARKS.md holds the table (`--section` names
another).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from head_sweep import frozen_features, take_step  # noqa: E402

from benchmarks_file import markdown_table, write_section  # noqa: E402
from mlcore.config import ModelConfig  # noqa: E402
from mlcore.data import CatalogItem, category_labels, category_names, identity_labels, load_catalog  # noqa: E402
from mlcore.evaluation import retrieval_report  # noqa: E402
from mlcore.fashion_vocabulary import vocabulary_variants  # noqa: E402
from mlcore.model import CategoryHead, create_model, with_category_block  # noqa: E402
from mlcore.projection import build_projection  # noqa: E402
from mlcore.shop_queries import RankingScores, shop_queries  # noqa: E402
from mlcore_train.losses import build_loss  # noqa: E402
from mlcore_train.trainer import category_head_terms, warmup_cosine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
# (training shops, synonym_share, text_variant_share)
DEFAULT_ROWS = (
    ("myntra", 0.0, 0.0),
    ("myntra", 0.3, 0.0),
    ("myntra", 0.5, 0.0),
    ("myntra", 0.3, 0.3),
    ("myntra+indofashion", 0.0, 0.0),
    ("myntra+indofashion", 0.3, 0.0),
)
BLOCK_WEIGHT = 0.1


class FrozenTexts:
    """MiniLM's pooled features of any text, computed once."""

    def __init__(self, model):
        self.model, self.features = model, {}

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        missing = [text for text in dict.fromkeys(texts) if text not in self.features]
        token_ids = self.model.tokenizer.encode_ids(missing)
        for start in range(0, len(missing), 256):
            tokens = self.model.tokenizer.pad(token_ids[start : start + 256])
            pooled = self.model.text_tower.pooled_features(tokens.token_ids, tokens.attention_mask)
            self.features.update(zip(missing[start : start + 256], pooled, strict=True))
        return torch.stack([self.features[text] for text in texts])


def parse_rows(text: str) -> tuple[tuple[str, float, float], ...]:
    rows = []
    for row in text.split(","):
        shops, synonym_share, variant_share = row.split(":")
        rows.append((shops, float(synonym_share), float(variant_share)))
    return tuple(rows)


def shop_split(shop: str, split: str, config: ModelConfig) -> tuple[list[CatalogItem], dict]:
    items = load_catalog(DATASETS / shop / "catalog.jsonl", DATASETS / shop / "splits.json", split)
    return items, frozen_features(items, config)


def train_heads(train_sets, texts: FrozenTexts, synonym_share: float, variant_share: float, epochs: int):
    torch.manual_seed(0)
    rng = random.Random(0)
    items = [item for shop_items, _ in train_sets for item in shop_items]
    photos = {key: torch.cat([features[key] for _, features in train_sets]) for key in ("image", "mirrored")}
    labels = torch.tensor(identity_labels(items, "title"))
    names = category_names(items)
    categories = torch.tensor(category_labels(items, names))
    titles = texts([item.title for item in items])
    swapped = [
        texts(list(versions)) if (versions := vocabulary_variants(item.title)) else None for item in items
    ]
    others = [texts(list(item.texts)) if variant_share and item.texts else None for item in items]
    loss_fn = build_loss("cmpm+infonce+category_nce", int(labels.max()) + 1, 512, len(names))
    image_head = nn.Sequential(nn.Dropout(0.1), build_projection(photos["image"].shape[1], 512, 2048, 0.2))
    text_head = build_projection(titles.shape[1], 512, 2048, 0.2)
    category_head = CategoryHead(len(names), 512)
    parameters = [
        *image_head.parameters(),
        *text_head.parameters(),
        *loss_fn.parameters(),
        *category_head.parameters(),
    ]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": 0.05},
            {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=1e-3,
    )
    batch_size = 256
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(math.ceil(len(items) / batch_size) * epochs, 0.05)
    )
    for _ in range(epochs):
        image_head.train(), text_head.train(), loss_fn.train()
        order = list(range(len(items)))
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            if len(batch) < 2:
                continue
            index = torch.tensor(batch)
            flip = torch.rand(len(batch)) < 0.5
            photo_batch = torch.where(flip[:, None], photos["mirrored"][index], photos["image"][index])
            rows = []
            for i in batch:
                if others[i] is not None and rng.random() < variant_share:
                    rows.append(others[i][rng.randrange(len(others[i]))])
                elif swapped[i] is not None and rng.random() < synonym_share:
                    rows.append(swapped[i][rng.randrange(len(swapped[i]))])
                else:
                    rows.append(titles[i])
            image_embeddings, text_embeddings = image_head(photo_batch), text_head(torch.stack(rows))
            terms = loss_fn(image_embeddings, text_embeddings, labels[index], categories[index])
            terms.update(
                category_head_terms(category_head, image_embeddings, text_embeddings, categories[index])
            )
            take_step(terms, optimizer, scheduler, parameters)
    image_head.eval(), text_head.eval(), category_head.eval()

    @torch.no_grad()
    def embed_photos(features: dict) -> torch.Tensor:
        plain = F.normalize(image_head(features["image"]), dim=-1)
        mirrored = F.normalize(image_head(features["mirrored"]), dim=-1)
        return with_category_block(F.normalize(plain + mirrored, dim=-1), category_head, BLOCK_WEIGHT)

    @torch.no_grad()
    def embed_texts(strings: list[str]) -> torch.Tensor:
        return with_category_block(
            F.normalize(text_head(texts(strings)), dim=-1), category_head, BLOCK_WEIGHT
        )

    return embed_photos, embed_texts


def query_kind_scores(embed_photos, embed_texts, items, features, kind: str, groups=None) -> dict:
    group_key = (lambda item: groups.get(item.product_id, item.product_id)) if groups else None
    queries = shop_queries(
        products=items,
        kinds=[kind],
        group_key=group_key or (lambda item: item.title_key),
        id_of=lambda item: item.product_id,
    )
    similarity = embed_texts([query.text for query in queries]).numpy() @ embed_photos(features).numpy().T
    skus = [item.product_id for item in items]
    types = {item.product_id: item.article_type for item in items}
    scores = RankingScores()
    for query, row in zip(queries, similarity, strict=True):
        scores.add([skus[i] for i in np.argsort(-row, kind="stable")[:10]], query, types)
    return scores.means()


def parse_trunks(text: str) -> tuple[tuple[str, int], ...]:
    trunks = []
    for trunk in text.split(","):
        backbone, image_size = trunk.split(":")
        trunks.append((backbone, int(image_size)))
    return tuple(trunks)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--rows",
        type=parse_rows,
        default=DEFAULT_ROWS,
        help="SHOPS:SYNONYM_SHARE:TEXT_VARIANT_SHARE,... (e.g. myntra:0.3:0,indofashion:0:0)",
    )
    parser.add_argument(
        "--trunks",
        type=parse_trunks,
        default=None,
        help="BACKBONE:IMAGE_SIZE,... image trunks to compare, each under every row (default: the default "
        "model's; e.g. efficientnet-lite0:224,efficientnet-lite2:260)",
    )
    parser.add_argument("--section", default="transfer-sweep", help="BENCHMARKS.md section to write")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    started = time.time()
    model_config = json.loads((ROOT / "mlcore/default_model/config.json").read_text())["model"]
    trunks = args.trunks or ((model_config["image_backbone"], model_config["image_size"]),)
    trained_shops = {shop for shops, _, _ in args.rows for shop in shops.split("+")}
    split_names = [(shop, "train") for shop in ("myntra", "indofashion") if shop in trained_shops]
    split_names += [("myntra", "val"), ("indofashion", "val"), ("luma", "train")]
    styles = json.loads((DATASETS / "luma" / "styles.json").read_text())
    texts = None
    rows = []
    for backbone, image_size in trunks:
        config = ModelConfig.from_dict({**model_config, "image_backbone": backbone, "image_size": image_size})
        texts = texts or FrozenTexts(create_model(config).eval())
        splits = {(shop, split): shop_split(shop, split, config) for shop, split in split_names}
        for shops, synonym_share, variant_share in args.rows:
            row_started = time.time()
            train_sets = [splits[shop, "train"] for shop in shops.split("+")]
            embed_photos, embed_texts = train_heads(
                train_sets, texts, synonym_share, variant_share, args.epochs
            )
            row = [f"{backbone} ({image_size} px)", shops, synonym_share, variant_share]
            for shop in ("myntra", "indofashion"):
                items, features = splits[shop, "val"]
                report = retrieval_report(
                    embed_photos(features).numpy(), embed_texts([item.title for item in items]).numpy(), items
                )
                row.append(
                    f"{report['t2i']['R@1']:.1f} / {report['t2i']['R@10']:.1f} / {report['type_p@10']:.3f}"
                )
            items, features = splits["luma", "train"]
            titles = query_kind_scores(embed_photos, embed_texts, items, features, "title", styles)
            phrases = query_kind_scores(embed_photos, embed_texts, items, features, "attributes")
            row += [f"{titles['R@10']:.3f} / {titles['type_p@10']:.3f}", f"{phrases['mAP@10']:.3f}"]
            rows.append(row)
            print(*row, f"{time.time() - row_started:.0f}s", sep=" | ", flush=True)
    header = [
        "image trunk",
        "trained on (`train`)",
        "synonym share",
        "text variant share",
        "Myntra val t2i R@1 / R@10 / type_p@10",
        "IndoFashion val t2i R@1 / R@10 / type_p@10",
        "Luma train titles (same style) R@10 / type_p@10",
        "Luma train attribute phrases mAP@10",
    ]
    command_options = " ".join(["", *sys.argv[1:]]).replace(" --no-write", "")
    title = "Image trunks compared" if args.trunks else "Transfer to a shop never trained on"
    body = f"""## {title} (`bench/transfer_sweep.py`)

`python bench/transfer_sweep.py{command_options}` — {(time.time() - started) / 60:.1f} min on this machine
({torch.get_num_threads()} torch threads, CPU). Heads over the frozen image trunk's mean+max pooled features
and MiniLM's, trained on the shops named with that share of pairs on synonym-swapped titles
(mlcore/fashion_vocabulary.py) and on the product's other texts, measured at the last of {args.epochs} epochs
on choice splits only (Myntra and IndoFashion `val`, Luma `train`, which no row trains on). Luma's R@10 is
the share of a style's products in the top 10, as in `new-shops`; the others' are percent of titles with a
relevant photo in the top 10.

{markdown_table(header, rows)}
"""
    if not args.no_write:
        write_section(args.section, body)
    print(body)


if __name__ == "__main__":
    main()
