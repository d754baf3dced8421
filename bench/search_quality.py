"""Search quality on the Myntra splits: fusion weight and full-text rank (val), vector vs hybrid (test).

    .venv/bin/python bench/search_quality.py            # embeds the bench catalogue once (10-15 min)

Runs on the bench database (bench/django_setup.py) holding the 9,583 Myntra products, embedded with
the default model (mlcore/default_model). Every ranking goes through the search code itself
(search/ranking.py: the HNSW candidate SQL restricted to the split's products, the same exact
rescoring, the same full-text SQL and reciprocal rank fusion), so the figures are the API's.

Two query sets, gallery = the split's products:
- `title`: each product's title, relevant = that product (t2i R@1 / R@10 / mAP@10). The text side and
  full text see the very title being searched for, so they are an upper bound there; the photo-only
  row is the pure text-to-photo figure.
- `attributes`: one query per (gender, colour, article type) present in the split, e.g.
  "Men Navy Blue Shirts", relevant = every product with those three values. Closer to what shoppers
  type, and free of the title leak, so the fusion weight is chosen on it (val split).

The full-text rank function of hybrid search (`ts_rank_cd`, cover density, or `ts_rank`, term
frequency, about a third of the query time) is chosen on val too: `ts_rank` unless its hybrid mAP@10
on attribute or title queries is more than 0.005 below `ts_rank_cd`'s.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchmarks_file import markdown_table, write_section  # noqa: E402
from bench.django_setup import setup  # noqa: E402

SPLITS = Path("/work/shared/datasets/myntra/splits.json")
WEIGHTS = [round(0.1 * step, 1) for step in range(11)]
CANDIDATES = 50  # search.conf MIN_CANDIDATES: what a 24-result page fetches per index
# Val tables: attribute queries first (they choose), then title queries.
VAL_COLUMNS = ("attr R@1", "attr R@10", "attr mAP@10", "title R@1", "title R@10", "title mAP@10")
# The cheaper rank function wins unless it loses more than this much hybrid mAP@10 on val.
RANK_FUNCTION_TOLERANCE = 0.005


def bench_version_ready(*, model_path: Path | None = None, activate: bool = True):
    """The bench database's version of the model (default: the default model): registered, embedded,
    indexed and active. Embedding happens once; later runs reuse the vectors."""
    from lifecycle.embedding_pipeline import embedding_backfill_version, products_missing_vectors
    from lifecycle.model_versions import (
        model_version_activate,
        model_version_build,
        model_version_register_checkpoint,
    )
    from lifecycle.models import ModelVersion
    from mlcore.default_model import default_model_path

    path = Path(model_path) if model_path else default_model_path()
    digest = hashlib.sha256((path / "config.json").read_bytes()).hexdigest()[:10]
    name = f"default-{digest}"
    version = ModelVersion.objects.filter(name=name).first()
    if version is None:
        version = model_version_register_checkpoint(path=path, name=name)
    if version.status in (ModelVersion.Status.TRAINING, ModelVersion.Status.EMBEDDING):
        started = time.perf_counter()

        def progress(batch, done, total):
            if done % 640 < 32 or done == total:
                print(f"  embedded {done}/{total} ({time.perf_counter() - started:.0f} s)", flush=True)

        print(f"Embedding the bench catalogue with {name} (once; reused afterwards)", flush=True)
        model_version_build(version=version, on_batch=progress)
    elif products_missing_vectors(version).exists():
        # Products imported after the version was built (an earlier run stopped between the two).
        print(f"Embedding the products {name} has no vectors for", flush=True)
        embedding_backfill_version(version=version)
    if activate and version.status != ModelVersion.Status.ACTIVE:
        model_version_activate(version=version)
    version.refresh_from_db()
    return version


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.django_setup import BENCH_DATABASE

    parser.add_argument("--database", default=BENCH_DATABASE, help="bench database (created when missing)")
    parser.add_argument(
        "--model", type=Path, default=None, help="model folder (default: mlcore/default_model)"
    )
    parser.add_argument(
        "--catalog", type=Path, default=None, help="import this catalogue when the database is empty"
    )


def bench_prepare(arguments: argparse.Namespace):
    """Django on the bench database, with the catalogue in it and the model's version active."""
    setup(database=arguments.database)
    from catalog.models import Product

    if arguments.catalog and not Product.objects.exists():
        from catalog.importing import catalog_import

        print(f"Importing {arguments.catalog}", flush=True)
        catalog_import(path=arguments.catalog)
    return bench_version_ready(model_path=arguments.model)


@dataclass
class Query:
    text: str
    relevant: set[int]


def queries_for(*, products: Sequence, kind: str) -> list[Query]:
    if kind == "title":
        return [Query(product.title, {product.pk}) for product in products]
    groups: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    for product in products:
        if product.gender and product.colour and product.article_type:
            groups[(product.gender, product.colour, product.article_type)].add(product.pk)
    return [Query(" ".join(key), ids) for key, ids in sorted(groups.items())]


def metrics(ranked: Sequence[int], relevant: set[int]) -> tuple[float, float, float]:
    """R@1 (the first result is relevant), R@10 (share of the relevant found in the top 10), mAP@10."""
    top = list(ranked[:10])
    hits, precision_sum = 0, 0.0
    for rank, product_id in enumerate(top, start=1):
        if product_id in relevant:
            hits += 1
            precision_sum += hits / rank
    r1 = 1.0 if top and top[0] in relevant else 0.0
    return r1, hits / min(len(relevant), 10), precision_sum / min(len(relevant), 10)


@dataclass
class Rankings:
    """Per query: the vector candidates with both similarities, and the full-text ranking by each
    rank function."""

    vector: list[list]  # search.ranking.Candidate
    fulltext: dict[str, list[list]]


def collect(*, version, queries: list[Query], gallery_ids: list[int]) -> Rankings:
    from search.ranking import FULLTEXT_RANK_FUNCTIONS, SearchFilters, rank_by_fulltext, rank_by_vectors
    from search.selectors import _encoder

    encoder = _encoder(version)
    vectors = encoder.encode_texts([query.text for query in queries])
    filters = SearchFilters(product_ids=tuple(gallery_ids))
    vector_rankings: list[list] = []
    fulltext_rankings: dict[str, list[list]] = {function: [] for function in FULLTEXT_RANK_FUNCTIONS}
    for query, vector in zip(queries, vectors, strict=True):
        candidates = rank_by_vectors(
            version=version,
            vectors={"image": vector, "text": vector},
            image_weight=0.5,
            k=CANDIDATES,
            filters=filters,
        )
        vector_rankings.append(candidates)
        for function, rankings in fulltext_rankings.items():
            rankings.append(
                rank_by_fulltext(text=query.text, k=CANDIDATES, filters=filters, rank_function=function)
            )
    return Rankings(vector_rankings, fulltext_rankings)


def evaluate(
    queries: list[Query], rankings: Rankings, ranker: Callable[[list, list], list], rank_function: str
) -> tuple[float, float, float]:
    totals = np.zeros(3)
    fulltext_rankings = rankings.fulltext[rank_function]
    for query, candidates, fulltext in zip(queries, rankings.vector, fulltext_rankings, strict=True):
        ranked = [candidate.product_id for candidate in ranker(candidates, fulltext)]
        totals += metrics(ranked, query.relevant)
    return tuple(float(value) for value in totals / len(queries))  # type: ignore[return-value]


def vector_ranker(weight: float):
    from search.tuning import fused_order

    return lambda candidates, fulltext: fused_order(candidates, weight)


def hybrid_ranker(weight: float, rrf_k: int):
    from search.ranking import reciprocal_rank_fusion
    from search.tuning import fused_order

    return lambda candidates, fulltext: reciprocal_rank_fusion(
        [fused_order(candidates, weight), fulltext], k=rrf_k
    )


def fmt(values: Sequence[float]) -> list[str]:
    return [f"{value:.3f}" for value in values]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--limit-queries", type=int, default=0, help="only the first N queries (smoke runs)")
    parser.add_argument("--splits", type=Path, default=SPLITS, help="split file (val and test sku lists)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    arguments = parser.parse_args()
    version = bench_prepare(arguments)
    from catalog.models import Product
    from mlcore.splits import split_skus
    from search.conf import search_settings

    rrf_k = int(search_settings.RRF_K)
    results: dict[tuple[str, str], tuple[list[Query], Rankings]] = {}
    for split in ("val", "test"):
        products = list(
            Product.objects.filter(
                sku__in=split_skus(split_file=arguments.splits, split=split), is_active=True
            ).order_by("pk")
        )
        gallery = [product.pk for product in products]
        for kind in ("title", "attributes"):
            queries = queries_for(products=products, kind=kind)
            if arguments.limit_queries:
                queries = queries[: arguments.limit_queries]
            started = time.perf_counter()
            results[(split, kind)] = (queries, collect(version=version, queries=queries, gallery_ids=gallery))
            print(
                f"{split}/{kind}: {len(queries)} queries over {len(gallery)} products "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )

    # The fusion weight, chosen on val (attribute queries, mAP@10); never on test.
    weight_rows, best_weight, best_map = [], 0.5, -1.0
    for weight in WEIGHTS:
        row = [f"{weight:.1f}"]
        for kind in ("attributes", "title"):
            queries, rankings = results[("val", kind)]
            row += fmt(evaluate(queries, rankings, vector_ranker(weight), "ts_rank"))
        weight_rows.append(row)
        attribute_map = float(row[3])
        if attribute_map > best_map + 1e-9:
            best_weight, best_map = weight, attribute_map
    print(markdown_table(["photo weight", *VAL_COLUMNS], weight_rows))
    print(f"chosen photo weight (val, attribute mAP@10): {best_weight}")

    # The full-text rank function, chosen on val with the chosen weight: the cheaper `ts_rank` unless
    # it loses more than RANK_FUNCTION_TOLERANCE of hybrid mAP@10 on either query set.
    rank_rows, val_maps = [], {}
    for function in ("ts_rank_cd", "ts_rank"):
        row = [f"hybrid, `{function}`"]
        for kind in ("attributes", "title"):
            queries, rankings = results[("val", kind)]
            scores = evaluate(queries, rankings, hybrid_ranker(best_weight, rrf_k), function)
            row += fmt(scores)
            val_maps[(function, kind)] = scores[2]
        rank_rows.append(row)
    rank_function = (
        "ts_rank"
        if all(
            val_maps[("ts_rank", kind)] >= val_maps[("ts_rank_cd", kind)] - RANK_FUNCTION_TOLERANCE
            for kind in ("attributes", "title")
        )
        else "ts_rank_cd"
    )
    rank_header = ["ranking (val)", *VAL_COLUMNS]
    print(markdown_table(rank_header, rank_rows))
    print(f"chosen full-text rank function (val): {rank_function}")

    # Vector vs hybrid on test, at the chosen weight; photo-only and text-only for reference.
    comparison = []
    rankers = [
        ("photo only (t2i)", vector_ranker(1.0)),
        ("product text only", vector_ranker(0.0)),
        (f"vector: photo {best_weight} + text {1 - best_weight:.1f}", vector_ranker(best_weight)),
        (f"hybrid: vector + full text (`{rank_function}`), RRF k={rrf_k}", hybrid_ranker(best_weight, rrf_k)),
        (f"full text only (`{rank_function}`)", lambda candidates, fulltext: fulltext),
    ]
    decisions = {}
    for label, ranker in rankers:
        row = [label]
        for kind in ("title", "attributes"):
            queries, rankings = results[("test", kind)]
            scores = evaluate(queries, rankings, ranker, rank_function)
            row += fmt(scores)
            decisions[(label.split(":")[0], kind)] = scores
        comparison.append(row)
    header = [
        "ranking (test)",
        "title R@1",
        "title R@10",
        "title mAP@10",
        "attr R@1",
        "attr R@10",
        "attr mAP@10",
    ]
    print(markdown_table(header, comparison))
    # Title queries are near saturated by the title leak: hybrid must win on attributes, not lose on titles.
    hybrid_helps = (
        decisions[("hybrid", "attributes")][2] > decisions[("vector", "attributes")][2]
        and decisions[("hybrid", "title")][2] >= decisions[("vector", "title")][2] - 0.01
    )
    default_mode = "hybrid" if hybrid_helps else "vector"
    shipped_mode = search_settings.DEFAULT_MODE
    print(f"default mode by measurement: {default_mode}")

    val_sizes = {kind: len(results[("val", kind)][0]) for kind in ("title", "attributes")}
    test_sizes = {kind: len(results[("test", kind)][0]) for kind in ("title", "attributes")}
    body = f"""## Search quality: fusion weight and hybrid vs vector (`bench/search_quality.py`)

Model version `{version.name}` (the default model), bench catalogue of 9,583 Myntra products.
Gallery = the split's products; rankings run through the search code (HNSW candidates, {CANDIDATES} per
index, exact rescoring, full text, RRF). Queries: `title` = each product's title, relevant = that
product (the text side and full text see that very title, so only the photo-only row is a clean
text-to-photo figure); `attributes` = "gender colour article type" (e.g. "Men Navy Blue Shirts"),
relevant = every product with those values. R@1 = first result relevant, R@10 = share of the
relevant products in the top 10, mAP@10 over the top 10.

**Fusion weight** (photo score weight; text gets 1 - weight), val split ({
        val_sizes["attributes"]
    } attribute and
{val_sizes["title"]} title queries); chosen by attribute mAP@10: **{best_weight}**.

{markdown_table(["photo weight", *VAL_COLUMNS], weight_rows)}

**Full-text rank function** of hybrid search, val split, photo weight {best_weight} (`ts_rank` takes
about a third of `ts_rank_cd`'s time: see the search-latency section); chosen: **`{rank_function}`**
(`ts_rank` unless it loses more than {RANK_FUNCTION_TOLERANCE} of hybrid mAP@10 on either query set).

{markdown_table(rank_header, rank_rows)}

**Vector vs hybrid**, test split ({test_sizes["attributes"]} attribute and {
        test_sizes["title"]
    } title queries),
photo weight {best_weight}:

{markdown_table(header, comparison)}

The rule set before measuring (hybrid only if it beats vector on attribute mAP@10 and loses at most
0.01 of title mAP@10) picks **{default_mode}**; the shipped default is **{shipped_mode}**
(`PRODUCT_SEARCH_DEFAULT_MODE`; search/conf.py says why: shoppers type attribute-like
queries, and the rule's title-query guard is mostly the title leak). Settings measured here:
`PRODUCT_SEARCH_IMAGE_WEIGHT = {best_weight}`, `PRODUCT_SEARCH_FULLTEXT_RANK =
"{rank_function}"` (search/conf.py). At photo weight 0.0 the API reads only the text index; the pool here
also holds the photo index's candidates, which can change a
ranking only where the text index's approximate scan missed a neighbour.
"""
    if not arguments.no_write:
        write_section("search-quality", body)
        print("Wrote the search-quality section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
