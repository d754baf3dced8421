"""New shops: the shipped model on catalogues it never saw, by query kind, through the search code.

    .venv/bin/python bench/new_shops.py                     # every shop (imports and embeds once)
    .venv/bin/python bench/new_shops.py --shops luma --no-write

Each shop gets a bench database of its own (`product_search_bench_<shop>`; Myntra shares the search
bench's), imported from `../shared/datasets/<shop>/` and embedded with the shipped default model. Every
ranking goes through search/ranking.py (the HNSW candidate SQL restricted to the split's products, the
exact rescoring, the full-text SQL and reciprocal rank fusion), so the figures are the API's.

Query kinds, gallery = the split's products:
- `title`: each product's title. Relevant: the same style for Luma (`styles.json`: its titles are style
  names shared by every colour), else the same sku or the same title (the datasets' protocol).
  `type_p@10` is the share of the top 10 with the query product's article type.
- `attributes`: one query per (gender, colour, article type) in the split, as a shopper types it
  ("Women Blue Jackets"; without colour where the shop has none); relevant: every product with them.
- `description`: the first sentence of each description (shops that write them); relevant: that
  product.

The product-text template (what the text vectors read, catalog/product_text.py) is chosen on the
choice split of every shop (Myntra and IndoFashion `val`, Luma `train`), never on `test`: the template
with the best mean hybrid mAP@10 over every shop and kind, unless it loses more than
TEMPLATE_TOLERANCE of it on one shop's kind against the title-only text.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchmarks_file import markdown_table, write_section  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
# Shop -> (the split the template is chosen on, the query kinds its data supports).
SHOPS = {
    "myntra": ("val", ("title", "attributes")),
    "indofashion": ("val", ("title", "attributes")),
    "luma": ("train", ("title", "attributes", "description")),
}
TEMPLATES = (
    "{title}",
    "{title}. {attributes}",
    "{title}. {attributes}. {description}",
)
# Exact-title queries are an upper bound (the product text holds the very query), so a template may
# give up a little there for what it brings to the queries shoppers type.
TEMPLATE_TOLERANCE = 0.05
CANDIDATES = 50  # search.conf MIN_CANDIDATES: what a 24-result page fetches per index
MODES = ("photo only (t2i)", "vector", "hybrid")


def queries_for(*, products: Sequence, kind: str, styles: dict[str, str]) -> list:
    """The shop's queries of one kind (mlcore.shop_queries), titles grouped by style where the shop has
    styles (Luma's titles are style names shared by every colour)."""
    from mlcore.shop_queries import shop_queries

    if kind == "title" and styles:
        return shop_queries(products=products, kinds=[kind], group_key=lambda p: styles.get(p.sku, p.sku))
    return shop_queries(products=products, kinds=[kind])


def rank_queries(*, version, queries: list, gallery_ids: list[int]) -> dict[str, list[list[int]]]:
    """Per mode, each query's top 10 product ids: `vector` and `hybrid` from search_by_text itself (what
    the API returns), `photo only` from the photo index alone."""
    from catalog.models import Product
    from search.evaluation import search_top_ids
    from search.ranking import SearchFilters, rank_by_vectors
    from search.selectors import query_encode_text

    filters = SearchFilters(product_ids=tuple(gallery_ids))
    rankings: dict[str, list[list[int]]] = {mode: [] for mode in MODES}
    for query in queries:
        photo = rank_by_vectors(
            version=version,
            vectors={"image": query_encode_text(version=version, text=query.text)},
            image_weight=1.0,
            k=CANDIDATES,
            filters=filters,
        )
        rankings["photo only (t2i)"].append([candidate.product_id for candidate in photo[:10]])
    gallery = list(Product.objects.filter(pk__in=gallery_ids).order_by("pk"))
    for mode in ("vector", "hybrid"):
        rankings[mode] = search_top_ids(texts=[query.text for query in queries], products=gallery, mode=mode)
    return rankings


def run_shop(shop: str, *, templates: Sequence[str], splits: Sequence[str], limit_queries: int) -> dict:
    """Import and embed the shop once, then measure each template on the given splits (`choice`: the
    shop's choice split)."""
    from bench.django_setup import BENCH_DATABASE, setup

    setup(database=BENCH_DATABASE if shop == "myntra" else f"{BENCH_DATABASE}_{shop}")
    from django.conf import settings

    from bench.search_quality import bench_version_ready
    from catalog.conf import catalog_settings
    from catalog.importing import catalog_import
    from catalog.models import Product
    from lifecycle.embedding_pipeline import embedding_refresh_texts
    from mlcore.shop_queries import RankingScores
    from mlcore.splits import split_skus

    folder = DATASETS / shop
    if not Product.objects.exists():
        started = time.perf_counter()
        print(f"[{shop}] importing {folder / 'catalog.jsonl'}", flush=True)
        catalog_import(path=folder / "catalog.jsonl")
        print(f"[{shop}] imported in {time.perf_counter() - started:.0f} s", flush=True)
    version = bench_version_ready()
    styles = json.loads((folder / "styles.json").read_text()) if (folder / "styles.json").exists() else {}
    choice_split, kinds = SHOPS[shop]
    galleries = {}
    for split in (choice_split if name == "choice" else name for name in splits):
        skus = split_skus(split_file=folder / "splits.json", split=split)
        galleries[split] = list(Product.objects.filter(sku__in=skus, is_active=True).order_by("pk"))
    types = dict(Product.objects.values_list("pk", "article_type"))
    results: dict = {
        "shop": shop,
        "choice_split": choice_split,
        "kinds": kinds,
        "rows": [],
        "text_seconds": {},
    }
    for template in templates:
        settings.PRODUCT_SEARCH_PRODUCT_TEXT_TEMPLATE = template
        catalog_settings.reload()
        started = time.perf_counter()
        embedding_refresh_texts(version=version)
        results["text_seconds"][template] = time.perf_counter() - started
        print(f"[{shop}] texts as {template!r}: {time.perf_counter() - started:.0f} s", flush=True)
        for split, products in galleries.items():
            gallery_ids = [product.pk for product in products]
            for kind in kinds:
                queries = queries_for(products=products, kind=kind, styles=styles)
                if limit_queries:
                    queries = queries[:limit_queries]
                rankings = rank_queries(version=version, queries=queries, gallery_ids=gallery_ids)
                for mode, ranked_lists in rankings.items():
                    scores = RankingScores()
                    for ranked, query in zip(ranked_lists, queries, strict=True):
                        scores.add(ranked, query, types)
                    results["rows"].append(
                        {
                            "template": template,
                            "split": split,
                            "kind": kind,
                            "mode": mode,
                            "queries": len(queries),
                            "gallery": len(gallery_ids),
                            "metrics": list(scores.means().values()),
                        }
                    )
                print(f"[{shop}] {split}/{kind}: {len(queries)} queries", flush=True)
    return results


def _retrain_splits(shop: str, folder: Path) -> Path:
    """The shop's split file for `retrain`: its own when it has a `val` split; else (Luma) a tenth of
    its `train` styles held out as `val`, chosen by a hash of the style, so `test` stays unseen."""
    splits = json.loads((folder / "splits.json").read_text())
    if "val" in splits:
        return folder / "splits.json"
    styles = json.loads((folder / "styles.json").read_text()) if (folder / "styles.json").exists() else {}

    def held_out(sku: str) -> bool:
        style = styles.get(sku, sku)
        return int(hashlib.sha256(style.encode()).hexdigest()[:8], 16) % 10 == 0

    train = [sku for sku in splits["train"] if not held_out(sku)]
    val = [sku for sku in splits["train"] if held_out(sku)]
    path = ROOT / "bench" / "out" / f"{shop}-retrain-splits.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"train": train, "val": val, "test": splits["test"]}))
    return path


def retrain_shop(shop: str, *, limit_queries: int, overrides: Sequence[str] = ()) -> dict:
    """`manage.py retrain` on the shop's train split (its photos embedded: features stored), its
    minutes by stage, then the test rows through search with whatever version is active after it."""
    from bench.django_setup import BENCH_DATABASE, setup

    setup(database=BENCH_DATABASE if shop == "myntra" else f"{BENCH_DATABASE}_{shop}")
    from catalog.models import Product
    from lifecycle.model_versions import model_version_activate
    from lifecycle.photo_features import photo_features_backfill
    from lifecycle.retraining import RetrainOptions, retrain_prepare, retrain_run
    from lifecycle.selectors import model_version_get_active
    from mlcore.shop_queries import RankingScores
    from mlcore.splits import split_skus

    folder = DATASETS / shop
    photo_features_backfill(version=model_version_get_active())  # as after embedding; untimed
    options = RetrainOptions(
        split_file=str(_retrain_splits(shop, folder)),
        mode="cpu-fast",
        device="auto",
        **_retrain_overrides(overrides),
    )
    marks = {"start": time.perf_counter()}

    def log(line: str) -> None:
        print(f"[{shop}] {line}", flush=True)
        for prefix, mark in (
            ("Training ", "train"),
            ("Held-out R@1 (t2i / i2t): new", "measured"),
            ("Embedding the catalogue", "embed"),
            ("Search settings chosen", "tuned"),
        ):
            if line.startswith(prefix):
                marks[mark] = time.perf_counter()

    version = retrain_prepare(options=options)
    outcome = retrain_run(version=version, options=options, log=log, show_progress=False)
    marks["end"] = time.perf_counter()
    version.refresh_from_db()
    training = json.loads((Path(version.artifact_path) / "metrics.json").read_text())
    features = float(training.get("feature_time_s", 0.0))
    stages = {
        "prepare": marks.get("train", marks["end"]) - marks["start"],
        "features": features,
        "epochs": version.metrics["training_seconds"] - features,
        "measure": marks.get("embed", marks["end"])
        - marks.get("train", marks["start"])
        - version.metrics["training_seconds"],
        "embed and tune search": marks.get("tuned", marks["end"]) - marks.get("embed", marks["end"]),
        "switch": marks["end"] - marks.get("tuned", marks["end"]),
        "total": marks["end"] - marks["start"],
    }
    # The rows measure the retrained version whatever the gate said (the gate's word is reported).
    previous = model_version_get_active()
    if not outcome.activated:
        model_version_activate(version=version)
    active = model_version_get_active()
    styles = json.loads((folder / "styles.json").read_text()) if (folder / "styles.json").exists() else {}
    products = list(
        Product.objects.filter(
            sku__in=split_skus(split_file=folder / "splits.json", split="test"), is_active=True
        ).order_by("pk")
    )
    types = dict(Product.objects.values_list("pk", "article_type"))
    rows = []
    for kind in SHOPS[shop][1]:
        queries = queries_for(products=products, kind=kind, styles=styles)
        if limit_queries:
            queries = queries[:limit_queries]
        rankings = rank_queries(
            version=active, queries=queries, gallery_ids=[product.pk for product in products]
        )
        for mode, ranked_lists in rankings.items():
            scores = RankingScores()
            for ranked, query in zip(ranked_lists, queries, strict=True):
                scores.add(ranked, query, types)
            rows.append(
                {
                    "template": "retrained",
                    "split": "test",
                    "kind": kind,
                    "mode": mode,
                    "queries": len(queries),
                    "gallery": len(products),
                    "metrics": list(scores.means().values()),
                }
            )
    if not outcome.activated and previous is not None:
        model_version_activate(version=previous)
    return {
        "shop": shop,
        "activated": outcome.activated,
        "reason": outcome.reason,
        "version": version.name,
        "active": active.name if active else None,
        "search_settings": version.search_settings,
        "minutes": {stage: seconds / 60 for stage, seconds in stages.items()},
        "products": Product.objects.filter(is_active=True).count(),
        "rows": rows,
    }


def choose_template(results: list[dict]) -> tuple[str, list[list[str]]]:
    """The template with the best mean hybrid mAP@10 on the choice splits, among those that lose no
    more than TEMPLATE_TOLERANCE on any shop's kind against the title-only text."""
    table: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for shop in results:
        for row in shop["rows"]:
            if row["split"] == shop["choice_split"] and row["mode"] == "hybrid":
                table[row["template"]][(shop["shop"], row["kind"])] = row["metrics"][2]
    # The title-only text is the baseline when it was measured (--templates may leave it out).
    baseline = table.get(TEMPLATES[0], {})
    keys = sorted({key for scores in table.values() for key in scores})
    rows, best, best_mean = [], next(iter(table), TEMPLATES[0]), -1.0
    for template, scores in table.items():
        mean = float(np.mean([scores[key] for key in keys]))
        admissible = all(scores[key] >= baseline[key] - TEMPLATE_TOLERANCE for key in baseline)
        rows.append(
            [
                f"`{template}`",
                *(f"{scores[key]:.3f}" for key in keys),
                f"{mean:.3f}",
                "yes" if admissible else "no",
            ]
        )
        if admissible and mean > best_mean + 1e-9:
            best, best_mean = template, mean
    header = ["template", *(f"{shop} {kind}" for shop, kind in keys), "mean", "within tolerance"]
    return best, [header, *rows]


def _test_rows(shop: dict, rows: list[dict], template: str, label: str) -> list[list[str]]:
    table = []
    for kind in shop["kinds"]:
        cells, count = {}, ""
        for row in rows:
            if row["template"] == template and row["split"] == "test" and row["kind"] == kind:
                r1, r10, map10, type_p = row["metrics"]
                extra = f", type_p@10 {type_p:.2f}" if kind == "title" else ""
                cells[row["mode"]] = f"R@1 {r1:.2f}, R@10 {r10:.2f}, mAP@10 {map10:.3f}{extra}"
                count = f"{row['queries']} / {row['gallery']}"
        if cells:
            table.append([f"{shop['shop']} ({label})", kind, count, *(cells.get(mode, "") for mode in MODES)])
    return table


def _retrain_table(retrained: list[dict]) -> str:
    if not retrained:
        return "Not yet here: the rows after `manage.py retrain` (run without `--skip-retrain`)."
    stages = list(retrained[0]["minutes"])
    rows = [
        [
            shop["shop"],
            str(shop["products"]),
            *(f"{shop['minutes'][stage]:.1f}" for stage in stages),
            "yes" if shop["activated"] else "no",
            json.dumps(shop["search_settings"]),
        ]
        for shop in retrained
    ]
    reasons = "\n".join(f"- {shop['shop']}: {shop['reason']}" for shop in retrained)
    return (
        "`manage.py retrain` on each shop's train split (its photos already embedded, so their trunk "
        "features are stored), minutes by stage, on this machine:\n\n"
        + markdown_table(["shop", "products", *stages, "activated", "search settings chosen"], rows)
        + "\n\n"
        + reasons
    )


def write_report(
    results: list[dict], *, chosen: str, choice_table: list[list[str]], seconds: float, retrained: list[dict]
) -> str:
    header = ["shop (test)", "query kind", "queries / gallery", *MODES]
    test_rows = []
    after = {shop["shop"]: shop for shop in retrained}
    for shop in results:
        test_rows += _test_rows(shop, shop["rows"], chosen, "shipped model")
        if shop["shop"] in after:
            test_rows += _test_rows(shop, after[shop["shop"]]["rows"], "retrained", "after retrain")
    return (
        "## New shops: the shipped model, by query kind (`bench/new_shops.py`)\n\n"
        "The default model (mlcore/default_model, trained on Myntra only) on each shop's `test` split, "
        "through the search code, with the search settings' defaults (photo weight, RRF k, full-text "
        "rank). `photo only (t2i)` ranks photos by the query alone (the model's cross-modal figure); "
        "`vector` fuses photo and product-text vectors; `hybrid` adds the full-text ranking (title A, "
        "fields and attributes B, description C). Relevance per kind is in the script's docstring.\n\n"
        + markdown_table(choice_table[0], choice_table[1:])
        + f"\n\nHybrid mAP@10 on the choice splits (Myntra and IndoFashion `val`, Luma `train`). Chosen "
        f"product-text template: `{chosen}`.\n\n"
        + markdown_table(header, test_rows)
        + "\n\n"
        + _retrain_table(retrained)
        + f"\n\nRun time {seconds / 60:.1f} min.\n"
    )


def _retrain_overrides(pairs: Sequence[str]) -> dict:
    """--retrain-option NAME=VALUE pairs as RetrainOptions fields, the value read as JSON when it can be."""
    overrides = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            overrides[name] = json.loads(value)
        except json.JSONDecodeError:
            overrides[name] = value
    return overrides


def _run_children(
    shops: Sequence[str],
    templates: Sequence[str],
    splits: Sequence[str],
    limit: int,
    retrain: bool = False,
    retrain_options: Sequence[str] = (),
) -> list[dict]:
    results = []
    for shop in shops:
        command = [sys.executable, __file__, "--limit-queries", str(limit)]
        if retrain:
            command += ["--retrain-one", shop]
            for option in retrain_options:
                command += ["--retrain-option", option]
        else:
            command += ["--one-shop", shop, "--templates", *templates, "--splits", *splits]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ) as child:
            assert child.stdout is not None
            for line in child.stdout:
                if line.startswith("RESULT "):
                    results.append(json.loads(line[len("RESULT ") :]))
                else:
                    print(line, end="", flush=True)
        if child.returncode:
            raise SystemExit(f"{shop}: the measuring process failed ({child.returncode})")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", nargs="+", default=list(SHOPS), choices=list(SHOPS))
    parser.add_argument("--templates", nargs="+", default=list(TEMPLATES))
    parser.add_argument("--limit-queries", type=int, default=0, help="first N queries per kind (smoke runs)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--skip-retrain", action="store_true", help="the shipped model's rows only")
    parser.add_argument(
        "--retrain-only",
        action="store_true",
        help="keep the last run's shipped rows (bench/out), add the retrain's",
    )
    parser.add_argument("--retrain-shops", nargs="+", default=list(SHOPS), choices=list(SHOPS))
    parser.add_argument(
        "--retrain-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a RetrainOptions field for the retrains, e.g. text_variant_share=0.3 or start=active",
    )
    parser.add_argument("--retrain-one", help=argparse.SUPPRESS)
    # Children: one database per process.
    parser.add_argument("--one-shop", help=argparse.SUPPRESS)
    parser.add_argument("--splits", nargs="+", default=["choice"], help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.retrain_one:
        print(
            "RESULT "
            + json.dumps(
                retrain_shop(
                    arguments.retrain_one,
                    limit_queries=arguments.limit_queries,
                    overrides=arguments.retrain_option,
                )
            )
        )
        return
    if arguments.one_shop:
        results = run_shop(
            arguments.one_shop,
            templates=arguments.templates,
            splits=arguments.splits,
            limit_queries=arguments.limit_queries,
        )
        print("RESULT " + json.dumps(results))
        return
    started = time.perf_counter()
    saved = ROOT / "bench" / "out" / "new_shops.json"
    if arguments.retrain_only:
        results = json.loads(saved.read_text())
    else:
        # Every template on the choice splits; then the chosen one alone on test.
        results = _run_children(arguments.shops, arguments.templates, ["choice"], arguments.limit_queries)
        chosen, _ = choose_template(results)
        print(f"chosen template: {chosen!r}", flush=True)
        tested = _run_children(arguments.shops, [chosen], ["test"], arguments.limit_queries)
        for shop, test in zip(results, tested, strict=True):
            shop["rows"] += test["rows"]
    chosen, choice_table = choose_template(results)
    retrained = []
    if not arguments.skip_retrain:
        for shop in arguments.retrain_shops:
            retrained += _run_children(
                [shop],
                [],
                [],
                arguments.limit_queries,
                retrain=True,
                retrain_options=arguments.retrain_option,
            )
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(results, indent=1))
    (saved.parent / "new_shops_retrained.json").write_text(json.dumps(retrained, indent=1))
    report = write_report(
        results,
        chosen=chosen,
        choice_table=choice_table,
        seconds=time.perf_counter() - started,
        retrained=retrained,
    )
    print(report)
    if not arguments.no_write:
        write_section("new-shops", report)


if __name__ == "__main__":
    main()
