"""Learning from clicks: what training on logged (query -> clicked product) pairs does, on Luma.

    .venv/bin/python bench/click_learning.py [--clicks 3] [--no-write]

Luma (453 products, never seen by the shipped model) in its own bench database
(`product_search_bench_luma`, shared with bench/new_shops.py). Shoppers' clicks are simulated: the first
sentence of each description of half the `train` products (chosen by a hash of the sku) is logged as a
search whose result the shopper clicked `--clicks` times, as the storefront's events would record it.
`manage.py retrain` then runs twice on the same split (bench/new_shops.py's: Luma's `train` styles, a
tenth held out as `val`), without the clicks and with them (`--clicks`), each version activated to be
measured. Measured through the search code (bench/new_shops.rank_queries), each query among the
products of its split:

- the clicked queries (what the clicks taught) and the same kind of query for the other train products
  (nothing clicked: does it spread?), ranked among the train products;
- the `test` split's titles, attribute phrases and descriptions (shops' other queries: no regression).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchmarks_file import markdown_table, write_section  # noqa: E402
from bench.new_shops import DATASETS, _retrain_splits, queries_for, rank_queries  # noqa: E402

SHOP = "luma"
MODES = ("photo only (t2i)", "vector", "hybrid")


def _clicked(sku: str) -> bool:
    return int(hashlib.sha256(f"clicked-{sku}".encode()).hexdigest()[:8], 16) % 2 == 0


def _log_clicks(queries: list, clicks: int) -> int:
    """Each query logged as a text search with `clicks` clicks on its product (analytics' own tables)."""
    from django.utils import timezone

    from catalog.models import Product
    from search.models import SearchEvent, SearchLog

    sku_of = dict(Product.objects.values_list("pk", "sku"))
    now = timezone.now()
    events = []
    for query in queries:
        (product_id,) = query.relevant
        for _ in range(clicks):
            log = SearchLog.objects.create(
                created_at=now,
                kind=SearchLog.Kind.TEXT,
                query=query.text[:512],
                normalized_query=" ".join(query.text.lower().split())[:512],
                mode="hybrid",
                result_count=10,
                latency_ms=0.0,
            )
            events.append(
                SearchEvent(
                    search=log,
                    kind=SearchEvent.Kind.CLICK,
                    sku=sku_of[product_id],
                    position=1,
                    created_at=now,
                )
            )
    SearchEvent.objects.bulk_create(events)
    return len(events)


def _measure(version, query_sets: dict[str, tuple[list, list]]) -> dict[str, dict[str, float]]:
    from catalog.models import Product
    from mlcore.shop_queries import RankingScores

    types = dict(Product.objects.values_list("pk", "article_type"))
    measured = {}
    for name, (queries, products) in query_sets.items():
        rankings = rank_queries(version=version, queries=queries, gallery_ids=[p.pk for p in products])
        for mode in MODES:
            scores = RankingScores()
            for ranked, query in zip(rankings[mode], queries, strict=True):
                scores.add(ranked, query, types)
            measured[f"{name}|{mode}"] = scores.means()
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clicks", type=int, default=3, help="simulated clicks per clicked query")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    arguments = parser.parse_args()

    from bench.django_setup import BENCH_DATABASE, setup

    setup(database=f"{BENCH_DATABASE}_{SHOP}")
    from django.conf import settings

    from bench.search_quality import bench_version_ready
    from catalog.importing import catalog_import
    from catalog.models import Product
    from lifecycle.model_versions import model_version_activate
    from lifecycle.photo_features import photo_features_backfill
    from lifecycle.retraining import RetrainOptions, retrain_prepare, retrain_run
    from mlcore.splits import split_skus
    from search.models import SearchEvent, SearchLog

    folder = DATASETS / SHOP
    if not Product.objects.exists():
        catalog_import(path=folder / "catalog.jsonl")
    shipped = bench_version_ready()
    photo_features_backfill(version=shipped)
    SearchEvent.objects.all().delete()
    SearchLog.objects.all().delete()
    split_file = _retrain_splits(SHOP, folder)
    train_skus = split_skus(split_file=split_file, split="train")
    test_skus = split_skus(split_file=folder / "splits.json", split="test")
    train = list(Product.objects.filter(sku__in=train_skus, is_active=True).order_by("pk"))
    test = list(Product.objects.filter(sku__in=test_skus, is_active=True).order_by("pk"))
    styles = json.loads((folder / "styles.json").read_text())
    train_descriptions = queries_for(products=train, kind="description", styles=styles)
    sku_of = {product.pk: product.sku for product in train}
    clicked = [query for query in train_descriptions if _clicked(sku_of[next(iter(query.relevant))])]
    unclicked = [query for query in train_descriptions if query not in clicked]
    query_sets = {
        "clicked train descriptions": (clicked, train),
        "unclicked train descriptions": (unclicked, train),
        **{
            f"test {kind}": (queries_for(products=test, kind=kind, styles=styles), test)
            for kind in ("title", "attributes", "description")
        },
    }
    settings.PRODUCT_SEARCH_CLICK_TRAINING_MIN_CLICKS = arguments.clicks
    started = time.perf_counter()
    results = {}
    for label, learn in (("without clicks", False), ("with clicks", True)):
        if learn:
            events = _log_clicks(clicked, arguments.clicks)
            print(f"logged {events} clicks on {len(clicked)} queries", flush=True)
        options = RetrainOptions(split_file=str(split_file), learn_from_clicks=learn)
        version = retrain_prepare(options=options)
        retrain_run(
            version=version, options=options, log=lambda line, label=label: print(f"[{label}] {line}")
        )
        version.refresh_from_db()
        model_version_activate(version=version)
        results[label] = _measure(version, query_sets)
    model_version_activate(version=shipped)
    elapsed = time.perf_counter() - started

    rows = []
    for name in query_sets:
        for mode in MODES:
            before = results["without clicks"][f"{name}|{mode}"]
            after = results["with clicks"][f"{name}|{mode}"]
            rows.append(
                [
                    name,
                    len(query_sets[name][0]),
                    mode,
                    f"{before['R@10']:.3f} / {before['mAP@10']:.3f}",
                    f"{after['R@10']:.3f} / {after['mAP@10']:.3f}",
                    f"{after['mAP@10'] - before['mAP@10']:+.3f}",
                ]
            )
    body = "\n".join(
        [
            "## Learning from clicks (`bench/click_learning.py`)",
            "",
            f"`python bench/click_learning.py --clicks {arguments.clicks}`: Luma, `manage.py retrain` on its `train`"
            " styles twice, without and with simulated clicks: the first description sentence of half the train"
            f" products (by sku hash) logged as a search with {arguments.clicks} clicks on that product"
            " (`PRODUCT_SEARCH_CLICK_TRAINING_MIN_CLICKS` the same). Each query ranked among its split's products"
            " through the search code; R@10 / mAP@10.",
            "",
            markdown_table(
                ["queries", "count", "mode", "retrained without clicks", "with clicks", "mAP@10 change"], rows
            ),
            "",
            f"Run time {elapsed / 60:.1f} min.",
        ]
    )
    print(body)
    if not arguments.no_write:
        write_section("click-learning", body)


if __name__ == "__main__":
    main()
