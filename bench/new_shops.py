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
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
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


@dataclass
class Query:
    text: str
    relevant: set[int]
    article_type: str = ""


@dataclass
class Scores:
    """Sums over queries, divided at the end: R@1, R@10, mAP@10 and (title queries) type_p@10."""

    totals: np.ndarray = field(default_factory=lambda: np.zeros(4))
    count: int = 0

    def add(self, ranked: Sequence[int], query: Query, types: dict[int, str]) -> None:
        top = list(ranked[:10])
        hits, precision_sum = 0, 0.0
        for rank, product_id in enumerate(top, start=1):
            if product_id in query.relevant:
                hits += 1
                precision_sum += hits / rank
        denominator = min(len(query.relevant), 10)
        same_type = sum(types.get(product_id) == query.article_type for product_id in top) / 10
        first_relevant = float(bool(top) and top[0] in query.relevant)
        self.totals += [first_relevant, hits / denominator, precision_sum / denominator, same_type]
        self.count += 1

    def means(self) -> list[float]:
        return [float(value) for value in self.totals / max(self.count, 1)]


def queries_for(*, products: Sequence, kind: str, styles: dict[str, str]) -> list[Query]:
    if kind == "title":
        by_key: dict[str, set[int]] = defaultdict(set)

        def key(product) -> str:
            if styles:
                return styles.get(product.sku, product.sku)
            return " ".join(product.title.lower().split())

        for product in products:
            by_key[key(product)].add(product.pk)
        return [
            Query(product.title, by_key[key(product)] | {product.pk}, product.article_type)
            for product in products
        ]
    if kind == "attributes":
        groups: dict[tuple[str, str, str], set[int]] = defaultdict(set)
        for product in products:
            if product.article_type:
                groups[(product.gender, product.colour, product.article_type)].add(product.pk)
        return [
            Query(" ".join(part for part in key if part), ids, key[2]) for key, ids in sorted(groups.items())
        ]
    from mlcore.product_text import description_sentences

    queries = []
    for product in products:
        sentence = next(iter(description_sentences(product.description)), "")
        if sentence:
            queries.append(Query(sentence, {product.pk}, product.article_type))
    return queries


def rank_queries(*, version, queries: list[Query], gallery_ids: list[int]) -> dict[str, list[list[int]]]:
    """Per mode, each query's top 10 product ids: `vector` and `hybrid` from search_by_text itself (what
    the API returns), `photo only` from the photo index alone."""
    from catalog.models import Product
    from search.ranking import SearchFilters, rank_by_vectors
    from search.selectors import query_encode_text, search_by_text

    ids_by_sku = dict(Product.objects.filter(pk__in=gallery_ids).values_list("sku", "pk"))
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
        for mode in ("vector", "hybrid"):
            page = search_by_text(query=query.text, filters=filters, limit=10, mode=mode)
            rankings[mode].append([ids_by_sku[hit.product["sku"]] for hit in page.hits])
    return rankings


def run_shop(shop: str, *, templates: Sequence[str], limit_queries: int) -> dict:
    """Import and embed the shop once, then measure every template on the choice and test splits."""
    from bench.django_setup import BENCH_DATABASE, setup

    setup(database=BENCH_DATABASE if shop == "myntra" else f"{BENCH_DATABASE}_{shop}")
    from django.conf import settings

    from bench.search_quality import bench_version_ready
    from catalog.conf import catalog_settings
    from catalog.importing import catalog_import
    from catalog.models import Product
    from lifecycle.embedding_pipeline import embedding_refresh_texts
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
    for split in (choice_split, "test"):
        skus = split_skus(split_file=folder / "splits.json", split=split)
        galleries[split] = list(Product.objects.filter(sku__in=skus, is_active=True).order_by("pk"))
    types = dict(Product.objects.values_list("pk", "article_type"))
    results: dict = {"shop": shop, "choice_split": choice_split, "kinds": kinds, "rows": []}
    for template in templates:
        settings.PRODUCT_SEARCH_PRODUCT_TEXT_TEMPLATE = template
        catalog_settings.reload()
        started = time.perf_counter()
        embedding_refresh_texts(version=version)
        print(f"[{shop}] texts as {template!r}: {time.perf_counter() - started:.0f} s", flush=True)
        for split, products in galleries.items():
            gallery_ids = [product.pk for product in products]
            for kind in kinds:
                queries = queries_for(products=products, kind=kind, styles=styles)
                if limit_queries:
                    queries = queries[:limit_queries]
                rankings = rank_queries(version=version, queries=queries, gallery_ids=gallery_ids)
                for mode, ranked_lists in rankings.items():
                    scores = Scores()
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
                            "metrics": scores.means(),
                        }
                    )
                print(f"[{shop}] {split}/{kind}: {len(queries)} queries", flush=True)
    return results


def choose_template(results: list[dict]) -> tuple[str, list[list[str]]]:
    """The template with the best mean hybrid mAP@10 on the choice splits, among those that lose no
    more than TEMPLATE_TOLERANCE on any shop's kind against the title-only text."""
    table: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for shop in results:
        for row in shop["rows"]:
            if row["split"] == shop["choice_split"] and row["mode"] == "hybrid":
                table[row["template"]][(shop["shop"], row["kind"])] = row["metrics"][2]
    baseline = table[TEMPLATES[0]]
    keys = sorted(baseline)
    rows, best, best_mean = [], TEMPLATES[0], -1.0
    for template, scores in table.items():
        mean = float(np.mean([scores[key] for key in keys]))
        admissible = all(scores[key] >= baseline[key] - TEMPLATE_TOLERANCE for key in keys)
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


def write_report(results: list[dict], *, chosen: str, choice_table: list[list[str]], seconds: float) -> str:
    header = ["shop (test)", "query kind", "queries / gallery", *MODES]
    test_rows = []
    for shop in results:
        for kind in shop["kinds"]:
            cells = {}
            count = ""
            for row in shop["rows"]:
                if row["template"] == chosen and row["split"] == "test" and row["kind"] == kind:
                    r1, r10, map10, type_p = row["metrics"]
                    extra = f", type_p@10 {type_p:.2f}" if kind == "title" else ""
                    cells[row["mode"]] = f"R@1 {r1:.2f}, R@10 {r10:.2f}, mAP@10 {map10:.3f}{extra}"
                    count = f"{row['queries']} / {row['gallery']}"
            test_rows.append([shop["shop"], kind, count, *(cells.get(mode, "") for mode in MODES)])
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
        + f"\n\nNot yet here: the rows after `manage.py retrain` on each shop. Run time {seconds / 60:.1f} min.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", nargs="+", default=list(SHOPS), choices=list(SHOPS))
    parser.add_argument("--templates", nargs="+", default=list(TEMPLATES))
    parser.add_argument("--limit-queries", type=int, default=0, help="first N queries per kind (smoke runs)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--one-shop", help=argparse.SUPPRESS)  # run in a child: one database per process
    arguments = parser.parse_args()
    if arguments.one_shop:
        results = run_shop(
            arguments.one_shop, templates=arguments.templates, limit_queries=arguments.limit_queries
        )
        print("RESULT " + json.dumps(results))
        return
    started = time.perf_counter()
    results = []
    for shop in arguments.shops:
        command = [
            sys.executable,
            __file__,
            "--one-shop",
            shop,
            "--limit-queries",
            str(arguments.limit_queries),
        ]
        command += ["--templates", *arguments.templates]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ) as child:
            assert child.stdout is not None
            for line in child.stdout:
                if line.startswith("RESULT "):
                    results.append(json.loads(line[len("RESULT ") :]))
                else:
                    print(line, end="", flush=True)
        if child.returncode:
            raise SystemExit(f"{shop}: the measuring process failed ({child.returncode})")
    chosen, choice_table = choose_template(results)
    report = write_report(
        results, chosen=chosen, choice_table=choice_table, seconds=time.perf_counter() - started
    )
    print(report)
    Path(ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "out" / "new_shops.json").write_text(json.dumps(results, indent=1))
    if not arguments.no_write:
        write_section("new-shops", report)


if __name__ == "__main__":
    main()
