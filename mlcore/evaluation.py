"""The project's evaluation protocol: title queries vs product photos (and back) on one split.

A gallery item is relevant to a query when it is the same product or has the same title
(case-insensitive). Category precisions are reported for text -> image.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlcore.data import CatalogItem
from mlcore.metrics import precision_at_k, precision_ceiling, relevance_matrix, retrieval_metrics
from mlcore.photo_features import PhotoFeatureStore, missing_keys
from mlcore.shop_queries import RankingScores, shop_queries

if TYPE_CHECKING:
    from mlcore.inference import Encoder


def retrieval_report(
    image_embeddings: np.ndarray, text_embeddings: np.ndarray, items: list[CatalogItem]
) -> dict:
    """Metrics in the JSON form the project reports (recalls and mAP in percent, precisions as fractions).

    Row i of both embedding matrices belongs to items[i]; embeddings are expected L2-normalised.
    """
    # Same title (normalised) covers "same product" too, since a product has one title.
    relevant = relevance_matrix([item.title_key for item in items], [item.title_key for item in items])
    t2i_similarity = text_embeddings @ image_embeddings.T  # (queries = titles, gallery = photos)
    categories = [item.type_colour_gender for item in items]
    types = [item.article_type for item in items]
    return {
        "t2i": retrieval_metrics(t2i_similarity, relevant),
        "i2t": retrieval_metrics(t2i_similarity.T, relevant.T),
        "type_p@10": precision_at_k(t2i_similarity, types, types),
        "category_p@10": precision_at_k(t2i_similarity, categories, categories),
        "category_p@10_ceiling": precision_ceiling(categories, categories),
        "gallery": len(items),
    }


def selection_score(metrics: dict) -> float:
    """Single number used to pick the best epoch on val: the sum of R@1/5/10 in both directions."""
    return sum(metrics[direction][f"R@{k}"] for direction in ("t2i", "i2t") for k in (1, 5, 10))


def choice_score(metrics: dict) -> float:
    """Single number used to choose between finished models or settings on val: the sum of recalls plus
    100 x type_p@10, so that the share of the right garment type in the top 10 counts beside finding
    the exact product."""
    return selection_score(metrics) + 100 * metrics["type_p@10"]


def format_report(report: dict) -> str:
    """A report as the few lines the commands print (recalls and mAP in percent, precisions as fractions)."""
    lines = [f"gallery {report['gallery']}"]
    for direction in ("t2i", "i2t"):
        m = report[direction]
        lines.append(
            f"{direction}: R@1 {m['R@1']:.2f}  R@5 {m['R@5']:.2f}  R@10 {m['R@10']:.2f}  "
            f"medr {m['medr']:.1f}  meanr {m['meanr']:.1f}  mAP@10 {m['mAP@10']:.2f}"
        )
    lines.append(
        f"type_p@10 {report['type_p@10']:.3f}  category_p@10 {report['category_p@10']:.3f} "
        f"(ceiling {report['category_p@10_ceiling']:.3f})"
    )
    return "\n".join(lines)


def evaluate(
    model: str | Path | Encoder,
    items: list[CatalogItem],
    batch_size: int = 64,
    device: str = "auto",
    grid_path: str | Path | None = None,
    grid_queries: int = 6,
    feature_store: PhotoFeatureStore | None = None,
) -> dict:
    """Encode the items' photos and titles with a model folder (or a loaded Encoder) and report metrics.
    With grid_path, also write a PNG of the top retrieved photos for a few title queries. With a
    `feature_store`, photos whose frozen-trunk maps it holds (under their `image_key`) are not read."""
    from mlcore.inference import Encoder

    encoder = model if isinstance(model, Encoder) else Encoder.load(model, device=device)
    image_embeddings = encode_item_photos(encoder, items, batch_size=batch_size, feature_store=feature_store)
    text_embeddings = encoder.encode_texts([item.title for item in items], batch_size=max(batch_size, 128))
    report = retrieval_report(image_embeddings, text_embeddings, items)
    report["model"] = encoder.name
    if grid_path is not None:
        plot_retrieval_grid(text_embeddings @ image_embeddings.T, items, Path(grid_path), grid_queries)
    return report


def evaluate_query_kind(
    model: str | Path | Encoder,
    items: list[CatalogItem],
    kind: str,
    *,
    groups: dict[str, str] | None = None,
    batch_size: int = 64,
    device: str = "auto",
) -> dict:
    """Text -> photo retrieval over the items' photos with queries of one kind built from the items
    (mlcore.shop_queries): R@1, R@10, mAP@10 and type_p@10. `groups` (sku -> group, e.g. a style) makes
    a title relevant to every product of its group instead of those sharing its title."""
    from mlcore.inference import Encoder

    encoder = model if isinstance(model, Encoder) else Encoder.load(model, device=device)
    group_key = (lambda item: groups.get(item.product_id, item.product_id)) if groups else _title_group
    queries = shop_queries(products=items, kinds=[kind], group_key=group_key, id_of=_sku)
    if not queries:
        return {"kind": kind, "queries": 0, "gallery": len(items)}
    photos = encode_item_photos(encoder, items, batch_size=batch_size, feature_store=None)
    texts = encoder.encode_texts([query.text for query in queries], batch_size=max(batch_size, 128))
    similarity = texts @ photos.T  # (queries, items)
    skus = [item.product_id for item in items]
    types = {item.product_id: item.article_type for item in items}
    scores = RankingScores()
    for query, row in zip(queries, similarity, strict=True):
        scores.add([skus[index] for index in np.argsort(-row, kind="stable")[:10]], query, types)
    return {"kind": kind, "queries": len(queries), "gallery": len(items), **scores.means()}


def _sku(item: CatalogItem) -> str:
    return item.product_id


def _title_group(item: CatalogItem) -> str:
    return item.title_key


def encode_item_photos(
    encoder: Encoder,
    items: list[CatalogItem],
    *,
    batch_size: int = 64,
    feature_store: PhotoFeatureStore | None,
) -> np.ndarray:
    """(n, dim) photo vectors of the items: from stored trunk maps where the store has them (the rest
    computed and kept), else from the photos."""
    trunk = encoder.trunk_key
    if feature_store is None or trunk is None or not all(item.image_key for item in items):
        return encoder.encode_images([item.image for item in items], batch_size=batch_size)
    keys = [item.image_key for item in items]
    found = feature_store.get_many(trunk=trunk, keys=keys)
    missing = missing_keys(keys, found)
    if missing:
        image_of = {item.image_key: item.image for item in items}
        computed = encoder.encode_prefix_maps([image_of[key] for key in missing], batch_size=batch_size)
        new = dict(zip(missing, computed, strict=True))
        feature_store.put_many(trunk=trunk, features=new)
        found.update(new)
    return encoder.encode_images_from_prefix_maps(np.stack([found[key] for key in keys]))


def plot_retrieval_grid(
    t2i_similarity: np.ndarray,
    items: list[CatalogItem],
    path: Path,
    queries: int = 6,
    top_k: int = 5,
    seed: int = 0,
) -> Path:
    """Rows: a few random title queries; columns: their top-k photos, framed green when relevant.

    Drawn with Pillow, so the serving library needs no plotting package."""
    from PIL import Image, ImageDraw, ImageOps

    from mlcore.image_preprocessing import open_rgb

    cell, caption, frame = 160, 16, 4
    chosen = np.random.default_rng(seed).choice(len(items), size=min(queries, len(items)), replace=False)
    grid = Image.new("RGB", (top_k * (cell + 2 * frame), len(chosen) * (caption + cell + 2 * frame)), "white")
    draw = ImageDraw.Draw(grid)
    for row, query in enumerate(chosen):
        top = row * (caption + cell + 2 * frame)
        draw.text((2, top + 2), items[query].title[:40], fill="black")
        ranked = np.argsort(-t2i_similarity[query], kind="stable")[:top_k]
        for column, index in enumerate(ranked):
            left = column * (cell + 2 * frame)
            colour = "green" if items[index].title_key == items[query].title_key else "lightgrey"
            draw.rectangle(
                (left, top + caption, left + cell + 2 * frame - 1, top + caption + cell + 2 * frame - 1),
                fill=colour,
            )
            photo = ImageOps.pad(open_rgb(items[index].image), (cell, cell), color="white")
            grid.paste(photo, (left + frame, top + caption + frame))
    path.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours keep a grid of photos recognisable at a fraction of the bytes, and model folders ship
    # in the project.
    grid.quantize(colors=256).save(path, optimize=True)
    return path
