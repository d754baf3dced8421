"""Typo tolerance: search quality on mistyped queries against the same queries typed right.

    .venv/bin/python bench/typo_tolerance.py [--per-kind 400] [--no-write]

On the bench database (the 9,583 Myntra products, embedded with the default model; bench/search_quality.py
prepares it), through search_by_text (the API's code), each query ranked among the `test` split's
products. Queries from the split's own data (mlcore.shop_queries): product titles and attribute phrases
("Men Navy Blue Shirts"). Each word of 4 letters or more gets one random edit (a letter dropped,
doubled, swapped with its neighbour or replaced), two from 8 letters: "navy check shirt" may become
"nvay chek shirrt". Shorter words stay as typed. The same seeded typos on every run.

Three rows per query kind: the clean queries, the typo'd ones with spelling correction (the default),
and the typo'd ones searched as typed (`correct_spelling=false`). Target: typo'd mAP@10 within 0.05 of
clean.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchmarks_file import markdown_table, write_section  # noqa: E402
from bench.search_quality import SPLITS, add_common_arguments, bench_prepare  # noqa: E402

KINDS = ("title", "attributes")


def _edit(word: str, rng: random.Random) -> str:
    position = rng.randrange(len(word))
    operation = rng.choice(("drop", "double", "swap", "replace"))
    if operation == "drop":
        return word[:position] + word[position + 1 :]
    if operation == "double":
        return word[: position + 1] + word[position] + word[position + 1 :]
    if operation == "swap" and position < len(word) - 1 and word[position] != word[position + 1]:
        return word[:position] + word[position + 1] + word[position] + word[position + 2 :]
    letters = [letter for letter in string.ascii_lowercase if letter != word[position].lower()]
    return word[:position] + rng.choice(letters) + word[position + 1 :]


def mistype(text: str, rng: random.Random) -> str:
    """One edit in each word of 4 to 7 letters, two in longer words; the result differs from the word."""
    words = []
    for word in text.split(" "):
        if len(word) >= 4 and word.isalpha():
            edits = 2 if len(word) >= 8 else 1
            typo = word
            while typo.lower() == word.lower():
                typo = word
                for _ in range(edits):
                    typo = _edit(typo, rng)
            word = typo
        words.append(word)
    return " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser)
    parser.add_argument("--splits", type=Path, default=SPLITS)
    parser.add_argument("--per-kind", type=int, default=400, help="queries per kind (a seeded sample)")
    parser.add_argument("--mode", default="hybrid", choices=["hybrid", "vector"])
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    arguments = parser.parse_args()
    version = bench_prepare(arguments)

    from catalog.models import Product
    from mlcore.shop_queries import RankingScores, shop_queries
    from search.evaluation import search_top_ids

    test_skus = set(json.loads(arguments.splits.read_text())["test"])
    products = list(Product.objects.filter(sku__in=test_skus, is_active=True).order_by("pk"))
    if not products:
        raise SystemExit("No test-split products in the bench database (--catalog to import them).")
    types = {product.pk: product.article_type for product in products}
    from search.spelling import query_correct_spelling
    from search.synonyms import synonym_cache

    known = synonym_cache.get().words

    def correction_ms(texts: list[str]) -> list[float]:
        """Time to correct each query as search does before encoding it (the `understand` stage)."""
        spent = []
        for text in texts:
            begun = time.perf_counter()
            query_correct_spelling(text, known=known)
            spent.append((time.perf_counter() - begun) * 1000)
        return spent

    rows, examples = [], []
    timings: dict[str, list[float]] = {"clean": [], "typo'd": []}
    started = time.perf_counter()
    for kind in KINDS:
        queries = shop_queries(products=products, kinds=[kind], per_kind=arguments.per_kind)
        rng = random.Random(f"typos-{kind}")
        typod = [mistype(query.text, rng) for query in queries]
        examples += [(query.text, typo) for query, typo in zip(queries[:3], typod[:3], strict=True)]
        timings["clean"] += correction_ms([query.text for query in queries])
        timings["typo'd"] += correction_ms(typod)
        conditions = {
            "clean": ([query.text for query in queries], True),
            "typo'd, corrected (default)": (typod, True),
            "typo'd, as typed": (typod, False),
        }
        for condition, (texts, correct) in conditions.items():
            scores = RankingScores()
            ranked = search_top_ids(
                texts=texts, products=products, mode=arguments.mode, correct_spelling=correct
            )
            for query, ids in zip(queries, ranked, strict=True):
                scores.add(ids, query, types)
            means = scores.means()
            rows.append(
                [
                    kind,
                    condition,
                    len(queries),
                    f"{means['R@1']:.3f}",
                    f"{means['R@10']:.3f}",
                    f"{means['mAP@10']:.3f}",
                ]
            )
            print(rows[-1], flush=True)
    elapsed = time.perf_counter() - started
    by_kind = {(row[0], row[1]): float(row[5]) for row in rows}
    gaps = {kind: by_kind[(kind, "clean")] - by_kind[(kind, "typo'd, corrected (default)")] for kind in KINDS}
    body = "\n".join(
        [
            "## Typo tolerance (`bench/typo_tolerance.py`)",
            "",
            f"`python bench/typo_tolerance.py --per-kind {arguments.per_kind}`: queries from the Myntra `test` split"
            f" ({len(products)} products, each query ranked among them), {arguments.mode} search through"
            f" search_by_text with model `{version.name}`. Each word of 4 letters or more gets one random edit"
            " (drop, double, swap or replace a letter), two from 8 letters; shorter words stay as typed."
            " Target: typo'd mAP@10 within 0.05 of clean.",
            "",
            markdown_table(["query kind", "condition", "queries", "R@1", "R@10", "mAP@10"], rows),
            "",
            "Clean minus typo'd (corrected) mAP@10: "
            + ", ".join(f"{kind} {gap:+.3f}" for kind, gap in gaps.items())
            + ". Examples: "
            + "; ".join(f"“{clean}” → “{typo}”" for clean, typo in examples)
            + ". Time to correct a query before it is encoded (search/spelling.py, the API's `understand`"
            " stage), p50 / p95: "
            + ", ".join(
                f"{condition} {np.percentile(spent, 50):.1f} / {np.percentile(spent, 95):.1f} ms"
                for condition, spent in timings.items()
            )
            + f". Run time {elapsed / 60:.1f} min.",
        ]
    )
    print(body)
    if not arguments.no_write:
        write_section("typo-tolerance", body)


if __name__ == "__main__":
    main()
