"""Latency and throughput of GET /api/v1/search/ against the raw query encoding + raw SQL queries.

    .venv/bin/python bench/search_latency.py [--requests 300]

On the bench database (the 9,583 Myntra products, embedded with the default model; the first run of
bench/search_quality.py or of this script embeds them once). A real server (`manage.py runserver
--noreload --nothreading`, DEBUG off, throttling off) answers on loopback; this process sends one
request at a time, in both search modes. Interleaved with each request, in the same run and on the
same queries, it times the floors: the active encoder's `encode_texts([q])` plus the single HNSW query
`ORDER BY embedding <=> q LIMIT 24` on the version's photo index (`vector` mode's floor), plus the raw
full-text queries for `hybrid` mode, which runs them too: the query's tsqueries
(search.ranking.fulltext_query_for), then the ranking with them as constants (fulltext_sql, executed
directly in a transaction after set_fulltext_scan_options, as the API does).
Target: API p50 <= 1.5 x floor p50.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchmarks_file import markdown_table, write_section  # noqa: E402
from bench.search_quality import SPLITS, add_common_arguments, bench_prepare  # noqa: E402

LIMIT = 24


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, server_log: IO[bytes]) -> subprocess.Popen:
    from django.db import connection

    environment = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "DEBUG": "0",
        # Search analytics would queue flushes on the broker's Redis; their cost after the response is
        # bench/analytics_overhead.py's to measure.
        "SEARCH_ANALYTICS": "0",
        "SECRET_KEY": "bench-only-secret-key-not-used-elsewhere-0123456789",
        "SEARCH_THROTTLE_ANON_RATE": "off",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    connection.close()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", "--nothreading", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe: runserver logs a line per request, and a pipe nobody reads fills up
        # (64 KB, ~500 requests) and then blocks the server mid-run.
        stderr=server_log,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError as error:
            if server.poll() is not None:
                server_log.seek(0)
                raise RuntimeError(f"runserver exited: {server_log.read().decode()[-4000:]}") from error
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("runserver did not start within 120 s")


def api_get(base: str, query: str, mode: str) -> tuple[float, dict, dict[str, float]]:
    """Client-side ms, the JSON body, and the view's own stages from its Server-Timing header."""
    url = f"{base}/api/v1/search/?" + urllib.parse.urlencode({"q": query, "limit": LIMIT, "mode": mode})
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
        server_timing = response.headers.get("Server-Timing", "")
    elapsed = (time.perf_counter() - started) * 1000
    stages = {
        name: float(value) for name, value in (item.split(";dur=") for item in server_timing.split(", "))
    }
    return elapsed, json.loads(body), stages


def percentiles(values: list[float]) -> list[str]:
    array = np.asarray(values)
    return [f"{np.percentile(array, p):.1f}" for p in (50, 95, 99)] + [f"{array.mean():.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--requests", type=int, default=300, help="measured requests (after 20 warm-up ones)")
    parser.add_argument("--splits", type=Path, default=SPLITS)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    arguments = parser.parse_args()
    version = bench_prepare(arguments)

    from django.db import connection, transaction

    from catalog.models import Product
    from search.conf import search_settings
    from search.ranking import (
        FULLTEXT_RANK_FUNCTIONS,
        SearchFilters,
        fulltext_query_for,
        fulltext_rows,
        fulltext_sql,
        fulltext_words,
        nearest_sql,
        vector_literal,
    )
    from search.selectors import _candidate_count, _encoder

    test_skus = json.loads(arguments.splits.read_text())["test"]
    queries = list(Product.objects.filter(sku__in=test_skus).order_by("pk").values_list("title", flat=True))
    if not queries:
        raise SystemExit("No test-split products in the bench database.")
    encoder = _encoder(version)
    sql, params = nearest_sql(version=version, kind="image", k=LIMIT, filters=SearchFilters())
    # What hybrid mode's full-text query is for a page of LIMIT results.
    page_candidates = _candidate_count(offset=0, limit=LIMIT)
    rank_function = search_settings.FULLTEXT_RANK
    # The other rank function's query, timed for reference (bench/search_quality.py chooses on val).
    other_rank_function = next(name for name in FULLTEXT_RANK_FUNCTIONS if name != rank_function)

    def fulltext(query: str, function: str) -> None:
        words = fulltext_query_for(fulltext_words(query))
        if words is None:
            return
        fulltext_rows(
            *fulltext_sql(k=page_candidates, filters=SearchFilters(), query=words, rank_function=function)
        )

    def raw(query: str) -> tuple[float, float, float, float]:
        started = time.perf_counter()
        vector = encoder.encode_texts([query])[0]
        encoded = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL hnsw.ef_search = 40")
            cursor.execute(sql, {**params, "q_image": vector_literal(vector)})
            rows = cursor.fetchall()
        searched = time.perf_counter()
        fulltext(query, rank_function)
        done = time.perf_counter()
        fulltext(query, other_rank_function)
        other = time.perf_counter()
        assert len(rows) == LIMIT
        return (
            (encoded - started) * 1000,
            (searched - encoded) * 1000,
            (done - searched) * 1000,
            (other - done) * 1000,
        )

    modes = ("vector", "hybrid")
    port = free_port()
    with tempfile.TemporaryFile() as server_log:
        server = start_server(port, server_log)
        base = f"http://127.0.0.1:{port}"
        try:
            for query in queries[:20]:  # warm-up: model load, connections, caches
                for mode in modes:
                    api_get(base, query, mode)
                raw(query)
            load_before = os.getloadavg()[0]
            api_ms: dict[str, list[float]] = {mode: [] for mode in modes}
            server_ms: dict[str, list[float]] = {mode: [] for mode in modes}
            stage_ms: dict[str, dict[str, list[float]]] = {mode: {} for mode in modes}
            encode_ms, ann_ms, fts_ms, other_fts_ms = [], [], [], []
            wall_api = dict.fromkeys(modes, 0.0)
            for index in range(arguments.requests):
                query = queries[(20 + index) % len(queries)]
                for mode in modes:
                    elapsed, body, stages = api_get(base, query, mode)
                    assert len(body["results"]) == LIMIT and body["mode"] == mode, body
                    api_ms[mode].append(elapsed)
                    server_ms[mode].append(body["took_ms"])
                    for stage, value in stages.items():
                        stage_ms[mode].setdefault(stage, []).append(value)
                    wall_api[mode] += elapsed
                encode, ann, fts, other_fts = raw(query)
                encode_ms.append(encode)
                ann_ms.append(ann)
                fts_ms.append(fts)
                other_fts_ms.append(other_fts)
        finally:
            server.terminate()
            server.wait(timeout=30)

    floors = {
        "vector": [a + b for a, b in zip(encode_ms, ann_ms, strict=True)],
        "hybrid": [a + b + c for a, b, c in zip(encode_ms, ann_ms, fts_ms, strict=True)],
    }
    ratios = {mode: float(np.median(api_ms[mode]) / np.median(floors[mode])) for mode in modes}
    throughput = {mode: arguments.requests / (wall_api[mode] / 1000) for mode in modes}
    default_mode = search_settings.DEFAULT_MODE

    def stage_rows(mode: str) -> list[list[str]]:
        return [
            [f"    view stage `{stage}` (Server-Timing)", *percentiles(values)]
            for stage, values in stage_ms[mode].items()
            if stage != "total"
        ]

    rows = [
        ["GET /api/v1/search/?mode=vector over HTTP (client-side)", *percentiles(api_ms["vector"])],
        ["  of which in the view (`took_ms`)", *percentiles(server_ms["vector"])],
        *stage_rows("vector"),
        ["GET /api/v1/search/?mode=hybrid over HTTP (client-side)", *percentiles(api_ms["hybrid"])],
        ["  of which in the view (`took_ms`)", *percentiles(server_ms["hybrid"])],
        *stage_rows("hybrid"),
        ["raw: encode the query", *percentiles(encode_ms)],
        ["raw: SQL ANN query (photo HNSW, LIMIT 24)", *percentiles(ann_ms)],
        [f"raw: SQL full-text queries (tsqueries, then `{rank_function}`, LIMIT 50)", *percentiles(fts_ms)],
        [f"  for reference: the same with `{other_rank_function}`", *percentiles(other_fts_ms)],
        ["floor of `vector`: encode + ANN", *percentiles(floors["vector"])],
        ["floor of `hybrid`: encode + ANN + full text", *percentiles(floors["hybrid"])],
    ]
    table = markdown_table(["ms", "p50", "p95", "p99", "mean"], rows)
    print(table)
    for mode in modes:
        print(
            f"{mode}: API p50 / floor p50 = {ratios[mode]:.2f} (target <= 1.5); "
            f"throughput {throughput[mode]:.1f} requests/s"
        )
    body = f"""## Search latency (`bench/search_latency.py`)

GET /api/v1/search/?q=<test-split title>&limit=24&mode=vector|hybrid (fusion and full-text rank as
configured: photo weight {search_settings.IMAGE_WEIGHT}, `{rank_function}`), {arguments.requests}
requests per mode, one at a time after 20 warm-up ones, against `manage.py runserver --noreload
--nothreading` (DEBUG off) on loopback; bench catalogue of {Product.objects.count():,} Myntra products,
model version `{version.name}` on CPU. The raw floors are timed in the same run, interleaved request
by request, on the same queries.

{table}

**API p50 / floor p50: `vector` {ratios["vector"]:.2f}, `hybrid` {ratios["hybrid"]:.2f}** (target <= 1.5;
`{default_mode}` is the default mode). Throughput with one client: {throughput["vector"]:.1f} requests/s
(`vector`), {throughput["hybrid"]:.1f} (`hybrid`). The API does more than its floor: the text index's 50
nearest products with exact rescoring, facets, the page's photos and JSON (and in `hybrid`, the fusion).
Machine: {os.cpu_count()} CPU cores, 1-minute load average {load_before:.1f} before the run and
{os.getloadavg()[0]:.1f} after it (other work on the cores slows both sides; the ratio is the figure).
"""
    if not arguments.no_write:
        write_section("search-latency", body)
        print("Wrote the search-latency section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
