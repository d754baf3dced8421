"""Latency and throughput of GET /api/v1/search/ against the raw query encoding + raw SQL ANN query.

    .venv/bin/python bench/search_latency.py [--requests 300]

On the bench database (the 9,583 Myntra products, embedded with the default model; the first run of
bench/search_quality.py or of this script embeds them once). A real server (`manage.py runserver
--noreload --nothreading`, DEBUG off, throttling off) answers on loopback; this process sends one
request at a time. Interleaved with each request, in the same run and on the same queries, it times
the floor: the active encoder's `encode_texts([q])` plus the single HNSW query
`ORDER BY embedding <=> q LIMIT 24` on the version's photo index. Target: API p50 <= 1.5 x floor p50.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

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


def start_server(port: int) -> subprocess.Popen:
    from django.db import connection

    environment = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "DEBUG": "0",
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
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError as error:
            if server.poll() is not None:
                raise RuntimeError(
                    f"runserver exited: {server.stderr.read().decode() if server.stderr else ''}"
                ) from error
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("runserver did not start within 120 s")


def api_get(base: str, query: str) -> tuple[float, dict]:
    url = f"{base}/api/v1/search/?" + urllib.parse.urlencode({"q": query, "limit": LIMIT})
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, json.loads(body)


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
    from search.ranking import SearchFilters, nearest_sql, vector_literal
    from search.selectors import _encoder

    test_skus = json.loads(arguments.splits.read_text())["test"]
    queries = list(Product.objects.filter(sku__in=test_skus).order_by("pk").values_list("title", flat=True))
    if not queries:
        raise SystemExit("No test-split products in the bench database.")
    encoder = _encoder(version)
    sql, params = nearest_sql(version=version, kind="image", k=LIMIT, filters=SearchFilters())

    def raw(query: str) -> tuple[float, float]:
        started = time.perf_counter()
        vector = encoder.encode_texts([query])[0]
        encoded = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL hnsw.ef_search = 40")
            cursor.execute(sql, {**params, "q_image": vector_literal(vector)})
            rows = cursor.fetchall()
        done = time.perf_counter()
        assert len(rows) == LIMIT
        return (encoded - started) * 1000, (done - encoded) * 1000

    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}"
    try:
        for query in queries[:20]:  # warm-up: model load, connections, caches
            api_get(base, query)
            raw(query)
        load_before = os.getloadavg()[0]
        api_ms, encode_ms, sql_ms, server_ms = [], [], [], []
        wall_api = 0.0
        for index in range(arguments.requests):
            query = queries[(20 + index) % len(queries)]
            elapsed, body = api_get(base, query)
            assert len(body["results"]) == LIMIT, body
            api_ms.append(elapsed)
            server_ms.append(body["took_ms"])
            wall_api += elapsed
            encode, ann = raw(query)
            encode_ms.append(encode)
            sql_ms.append(ann)
    finally:
        server.terminate()
        server.wait(timeout=30)

    floor_ms = [a + b for a, b in zip(encode_ms, sql_ms, strict=True)]
    ratio = float(np.median(api_ms) / np.median(floor_ms))
    throughput = arguments.requests / (wall_api / 1000)
    rows = [
        ["GET /api/v1/search/ over HTTP (client-side)", *percentiles(api_ms)],
        ["  of which in the view (`took_ms`)", *percentiles(server_ms)],
        ["raw: encode the query", *percentiles(encode_ms)],
        ["raw: SQL ANN query (photo HNSW, LIMIT 24)", *percentiles(sql_ms)],
        ["raw: encode + SQL (the floor)", *percentiles(floor_ms)],
    ]
    table = markdown_table(["ms", "p50", "p95", "p99", "mean"], rows)
    print(table)
    print(f"API p50 / floor p50 = {ratio:.2f} (target <= 1.5); throughput {throughput:.1f} requests/s")
    body = f"""## Search latency (`bench/search_latency.py`)

GET /api/v1/search/?q=<test-split title>&limit=24 (default mode and fusion), {arguments.requests} requests one
at a time after 20 warm-up ones, against `manage.py runserver --noreload --nothreading` (DEBUG off)
on loopback;
bench catalogue of {Product.objects.count():,} Myntra products, model version `{version.name}` on CPU. The raw
floor is timed in the same run, interleaved request by request, on the same queries.

{table}

**API p50 / (encode + SQL) p50 = {ratio:.2f}** (target <= 1.5). Throughput with one client:
{throughput:.1f} requests/s. The API does more than the floor: two HNSW scans (photos and texts, 100
candidates each), exact rescoring of the candidates, facets, the page's products and JSON.
Machine: {os.cpu_count()} CPU cores, 1-minute load average {load_before:.1f} before the run and
{os.getloadavg()[0]:.1f} after it (other work on the cores slows both sides; the ratio is the figure).
"""
    if not arguments.no_write:
        write_section("search-latency", body)
        print("Wrote the search-latency section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
