"""Latency of GET /api/v1/suggest/ (suggestions as you type) against its raw SQL, in the same run.

    .venv/bin/python bench/suggest_latency.py [--requests 400]

On the bench database (bench/django_setup.py) with the 9,583 Myntra products (imported by the first
run of bench/search_quality.py or bench/search_latency.py; no vectors are needed here). Popular
queries are the catalogue's attribute phrases ("men navy blue shirts"), counted by how many products
have them, written into the bench database's PopularQuery table. What is typed: the first 1 to 12
characters of test-split titles and attribute phrases, as a shopper's keystrokes would send them.

A real server (`manage.py runserver --noreload --nothreading`, DEBUG off, throttling off) answers on
loopback, one request at a time after 30 warm-up ones; interleaved with each request, this process
runs the title query alone (search.suggestions.title_suggestions_sql, the only SQL of a suggestion) on
the same prefix, skipped for one letter as the API skips it. Target: API p50 <= 15 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchmarks_file import markdown_table, write_section  # noqa: E402
from bench.django_setup import BENCH_DATABASE, setup  # noqa: E402
from bench.search_latency import free_port, percentiles, start_server  # noqa: E402

CATALOG = Path("/work/shared/datasets/myntra/catalog.jsonl")
SPLITS = Path("/work/shared/datasets/myntra/splits.json")
LIMIT = 10
TARGET_P50_MS = 15.0


def typed_prefixes(phrases: list[str], count: int, seed: int = 13) -> list[str]:
    """What shoppers' keystrokes send: the first 1..12 characters of phrases, ending at any letter."""
    rng = random.Random(seed)
    prefixes = []
    while len(prefixes) < count:
        phrase = rng.choice(phrases).lower()
        cut = rng.randint(1, min(12, len(phrase)))
        prefix = phrase[:cut].strip()
        if prefix:
            prefixes.append(prefix)
    return prefixes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=BENCH_DATABASE)
    parser.add_argument("--requests", type=int, default=400, help="measured requests (after 30 warm-up ones)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    arguments = parser.parse_args()
    setup(database=arguments.database)

    from django.db import connection
    from django.utils import timezone

    from catalog.models import Product
    from search.models import PopularQuery
    from search.suggestions import (
        TITLE_MIN_CHARACTERS,
        prefix_words,
        title_prefix_tsquery,
        title_suggestions_sql,
    )

    if not Product.objects.exists():
        from catalog.importing import catalog_import

        print(f"Importing {CATALOG} (once)", flush=True)
        catalog_import(path=CATALOG)
    products = Product.objects.filter(is_active=True)
    phrases = Counter(
        " ".join(part for part in (gender, colour, article_type) if part).lower()
        for gender, colour, article_type in products.values_list("gender", "colour", "article_type")
    )
    PopularQuery.objects.all().delete()
    now = timezone.now()
    PopularQuery.objects.bulk_create(
        PopularQuery(normalized_query=phrase, searches=count, last_searched_at=now)
        for phrase, count in phrases.items()
    )
    test_skus = json.loads(SPLITS.read_text())["test"]
    titles = list(products.filter(sku__in=test_skus).order_by("pk").values_list("title", flat=True))
    prefixes = typed_prefixes(titles + list(phrases), 30 + arguments.requests)
    sql = title_suggestions_sql(LIMIT)

    def raw(prefix: str) -> float:
        started = time.perf_counter()
        words = prefix_words(prefix)
        if sum(len(word) for word in words) >= TITLE_MIN_CHARACTERS:  # as the API: no titles for one letter
            with connection.cursor() as cursor:
                cursor.execute(sql, [title_prefix_tsquery(words)])
                cursor.fetchall()
        return (time.perf_counter() - started) * 1000

    def api(base: str, prefix: str) -> tuple[float, int]:
        url = f"{base}/api/v1/suggest/?" + urllib.parse.urlencode({"q": prefix, "limit": LIMIT})
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as response:
            body = json.loads(response.read())
        return (time.perf_counter() - started) * 1000, len(body["suggestions"])

    port = free_port()
    with tempfile.TemporaryFile() as server_log:
        server = start_server(port, server_log)
        base = f"http://127.0.0.1:{port}"
        try:
            for prefix in prefixes[:30]:  # warm-up: connections, the in-memory vocabulary
                api(base, prefix)
                raw(prefix)
            load_before = os.getloadavg()[0]
            api_ms, raw_ms, answered = [], [], []
            for prefix in prefixes[30:]:
                elapsed, count = api(base, prefix)
                api_ms.append(elapsed)
                answered.append(count)
                raw_ms.append(raw(prefix))
        finally:
            server.terminate()
            server.wait(timeout=30)

    api_p50, raw_p50 = float(np.median(api_ms)), float(np.median(raw_ms))
    rows = [
        ["GET /api/v1/suggest/?q=<prefix>&limit=10 over HTTP (client-side)", *percentiles(api_ms)],
        ["raw: the title SQL alone (prefix tsquery, LIMIT 10)", *percentiles(raw_ms)],
    ]
    table = markdown_table(["ms", "p50", "p95", "p99", "mean"], rows)
    verdict = "meets" if api_p50 <= TARGET_P50_MS else "misses"
    print(table)
    print(f"API p50 {api_p50:.1f} ms ({verdict} the {TARGET_P50_MS:.0f} ms target); raw SQL {raw_p50:.1f} ms")
    body = f"""## Suggestions as you type (`bench/suggest_latency.py`)

GET /api/v1/suggest/?q=<prefix>&limit=10, {arguments.requests} prefixes (the first 1 to 12 characters of
test-split titles and attribute phrases, seed 13), one request at a time after 30 warm-up ones, against
`manage.py runserver --noreload --nothreading` (DEBUG off) on loopback; {products.count():,} active Myntra
products, {len(phrases):,} popular queries (the catalogue's attribute phrases). The raw title query is
timed in the same run, interleaved request by request, on the same prefixes. A request answered
{np.mean(answered):.1f} suggestions on average.

{table}

**API p50 {api_p50:.1f} ms: {verdict} the target of {TARGET_P50_MS:.0f} ms** (the raw SQL's p50 is
{raw_p50:.1f} ms; the rest is the HTTP round trip, DRF and matching the in-memory brands, categories,
colours and popular queries). Machine: {os.cpu_count()} CPU cores, 1-minute load average {load_before:.1f}
before the run and {os.getloadavg()[0]:.1f} after it.
"""
    if not arguments.no_write:
        write_section("suggest-latency", body)
        print("Wrote the suggest-latency section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
