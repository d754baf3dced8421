""" "More like this" quality on the Myntra splits: the photo/text weight of similar products (val).

    .venv/bin/python bench/similar_quality.py     # on the bench database (see bench/search_quality.py)

Each product of a split asks for products like itself, the way GET /api/v1/products/<sku>/similar/
does (search.selectors: the product's stored primary-photo and text vectors, the HNSW candidate SQL
restricted to the split's other products, exact rescoring); relevant = the split's other products of
the same gender, colour and article type (products with none are left out). The weight
(`PRODUCT_SEARCH_SIMILAR_IMAGE_WEIGHT`: photo against photos, text against texts) is chosen on val
by mAP@10; test shows the chosen weight beside the previous setting, 0.5.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchmarks_file import markdown_table, write_section  # noqa: E402
from bench.search_quality import (  # noqa: E402
    CANDIDATES,
    SPLITS,
    WEIGHTS,
    add_common_arguments,
    bench_prepare,
    metrics,
)

PREVIOUS_WEIGHT = 0.5


def collect(*, version, products: list) -> list[tuple[set[int], list]]:
    """Per product with at least one relevant product: (relevant ids, candidates with both similarities)."""
    from search.ranking import SearchFilters, rank_by_vectors
    from search.selectors import _product_vectors

    groups: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    for product in products:
        groups[(product.gender, product.colour, product.article_type)].add(product.pk)
    gallery = tuple(product.pk for product in products)
    rows = []
    for product in products:
        relevant = groups[(product.gender, product.colour, product.article_type)] - {product.pk}
        if not relevant or not (product.gender and product.colour and product.article_type):
            continue
        vectors = _product_vectors(version=version, product=product)
        candidates = rank_by_vectors(
            version=version,
            vectors=vectors,
            image_weight=0.5,  # any weight in (0, 1): both kinds searched, both similarities kept
            k=CANDIDATES,
            filters=SearchFilters(product_ids=gallery, exclude_product_id=product.pk),
        )
        rows.append((relevant, candidates))
    return rows


def evaluate(rows: list[tuple[set[int], list]], weight: float) -> tuple[float, float, float]:
    from search.tuning import fused_order

    totals = np.zeros(3)
    for relevant, candidates in rows:
        ranked = [candidate.product_id for candidate in fused_order(candidates, weight)]
        totals += metrics(ranked, relevant)
    return tuple(float(value) for value in totals / len(rows))  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--splits", type=Path, default=SPLITS, help="split file (val and test sku lists)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    arguments = parser.parse_args()
    version = bench_prepare(arguments)
    from catalog.models import Product
    from mlcore.splits import split_skus

    rows = {}
    for split in ("val", "test"):
        started = time.perf_counter()
        products = list(
            Product.objects.filter(
                sku__in=split_skus(split_file=arguments.splits, split=split), is_active=True
            ).order_by("pk")
        )
        rows[split] = collect(version=version, products=products)
        if not rows[split]:
            raise SystemExit(
                f"No {split}-split products in the bench database: give --catalog "
                "../shared/datasets/myntra/catalog.jsonl once to import them."
            )
        print(
            f"{split}: {len(rows[split])} products asking for similar ones "
            f"({time.perf_counter() - started:.0f} s)"
        )

    header = ["photo weight", "R@1", "R@10", "mAP@10"]
    val_rows, best_weight, best_map = [], PREVIOUS_WEIGHT, -1.0
    for weight in WEIGHTS:
        scores = evaluate(rows["val"], weight)
        val_rows.append([f"{weight:.1f}", *(f"{value:.3f}" for value in scores)])
        if scores[2] > best_map + 1e-9:
            best_weight, best_map = weight, scores[2]
    print(markdown_table(header, val_rows))
    print(f"chosen similar-products photo weight (val, mAP@10): {best_weight}")
    test_rows = [
        [f"{weight:.1f}{' (chosen)' if weight == best_weight else ' (previous setting)'}"]
        + [f"{value:.3f}" for value in evaluate(rows["test"], weight)]
        for weight in sorted({best_weight, PREVIOUS_WEIGHT})
    ]
    print(markdown_table(header, test_rows))
    body = f"""## "More like this": the photo/text weight (`bench/similar_quality.py`)

Model version `{version.name}`, bench catalogue of 9,583 Myntra products. Each product of the split asks
for products like itself through the search code (its stored primary-photo and text vectors, HNSW
candidates among the split's other products, {CANDIDATES} per index, exact rescoring); relevant = the
split's other products with its gender, colour and article type. R@1 = first result relevant, R@10 =
share of the relevant found in the top 10, mAP@10 over the top 10.

Val ({len(rows["val"])} products); chosen by mAP@10: **{best_weight}**
(`PRODUCT_SEARCH_SIMILAR_IMAGE_WEIGHT`, search/conf.py).

{markdown_table(header, val_rows)}

Test ({len(rows["test"])} products), the chosen weight beside the previous setting:

{markdown_table(header, test_rows)}
"""
    if not arguments.no_write:
        write_section("similar-quality", body)
        print("Wrote the similar-quality section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
