"""What recording searches costs: GET /api/v1/search/ with analytics on against the same with them off,
in one run, and how fast the flush writes the buffer to the log.

    .venv/bin/python bench/analytics_overhead.py [--requests 200]

On the bench database (the 9,583 Myntra products embedded with the default model, as
bench/search_latency.py uses it). Two real servers (`manage.py runserver --noreload --nothreading`,
DEBUG off, throttling off) answer on loopback, one with `SEARCH_ANALYTICS=1`, one with `=0`; each
test-split title is sent to both, in an order drawn at random per pair, in the default mode, one
request at a time. The recording server appends to a Redis buffer of its own (Redis database 12, so
no developer's worker sees its flush tasks) and this script flushes that buffer at the end, timed.
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
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The buffer and the broker of both servers and of this process: a Redis database no worker reads.
BENCH_REDIS_URL = "redis://127.0.0.1:6379/12"
os.environ["REDIS_URL"] = BENCH_REDIS_URL

from bench.benchmarks_file import markdown_table, write_section  # noqa: E402
from bench.search_latency import free_port, percentiles, start_server  # noqa: E402
from bench.search_quality import SPLITS, add_common_arguments, bench_prepare  # noqa: E402

LIMIT = 24


def api_get(base: str, query: str) -> tuple[float, dict]:
    url = f"{base}/api/v1/search/?" + urllib.parse.urlencode({"q": query, "limit": LIMIT})
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = json.loads(response.read())
    return (time.perf_counter() - started) * 1000, body


def median_interval(differences: list[float], *, seed: int = 5, draws: int = 2000) -> tuple[float, float]:
    """A 95% bootstrap interval of the median of paired differences."""
    rng = np.random.default_rng(seed)
    values = np.asarray(differences)
    medians = np.median(rng.choice(values, size=(draws, len(values)), replace=True), axis=1)
    return float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--requests", type=int, default=200, help="measured pairs (after 20 warm-up pairs)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    arguments = parser.parse_args()
    version = bench_prepare(arguments)

    from catalog.models import Product
    from search.analytics import search_analytics_flush
    from search.analytics_buffer import SEARCHES, buffer_clear, buffer_client, buffer_length
    from search.conf import search_settings
    from search.models import SearchLog

    test_skus = json.loads(SPLITS.read_text())["test"]
    queries = list(Product.objects.filter(sku__in=test_skus).order_by("pk").values_list("title", flat=True))
    buffer_clear()
    rng = random.Random(7)
    ports = {"on": free_port(), "off": free_port()}
    servers = {}
    with tempfile.TemporaryFile() as log_on, tempfile.TemporaryFile() as log_off:
        try:
            for name, log in (("on", log_on), ("off", log_off)):
                os.environ["SEARCH_ANALYTICS"] = "1" if name == "on" else "0"
                servers[name] = start_server(ports[name], log)
            bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            for query in queries[:20]:  # warm-up: model load, connections
                for name in bases:
                    api_get(bases[name], query)
            load_before = os.getloadavg()[0]
            latency: dict[str, list[float]] = {"on": [], "off": []}
            for index in range(arguments.requests):
                query = queries[(20 + index) % len(queries)]
                order = ["on", "off"] if rng.random() < 0.5 else ["off", "on"]
                for name in order:
                    elapsed, body = api_get(bases[name], query)
                    assert len(body["results"]) == LIMIT, body
                    assert (body["search_id"] is not None) == (name == "on"), body["search_id"]
                    latency[name].append(elapsed)
        finally:
            for server in servers.values():
                server.terminate()
                server.wait(timeout=30)

    buffered = buffer_length(SEARCHES)
    logged_before = SearchLog.objects.count()
    started = time.perf_counter()
    report = search_analytics_flush()
    flush_s = time.perf_counter() - started
    assert report.done and SearchLog.objects.count() - logged_before == buffered
    # The flush tasks the recording server queued have no worker here: drop them with the buffer.
    buffer_client().delete("embed")

    differences = [on - off for on, off in zip(latency["on"], latency["off"], strict=True)]
    low, high = median_interval(differences)
    p50_on, p50_off = float(np.median(latency["on"])), float(np.median(latency["off"]))
    rows = [
        ["analytics on: GET /api/v1/search/ (client-side)", *percentiles(latency["on"])],
        ["analytics off: the same queries, same run", *percentiles(latency["off"])],
        ["paired difference on - off", *percentiles(differences)],
    ]
    table = markdown_table(["ms", "p50", "p95", "p99", "mean"], rows)
    print(table)
    summary = (
        f"p50 on {p50_on:.1f} ms, off {p50_off:.1f} ms; median paired difference "
        f"{float(np.median(differences)):+.2f} ms (95% interval {low:+.2f} to {high:+.2f})"
    )
    print(summary)
    print(f"flush: {buffered} searches in {flush_s * 1000:.0f} ms")
    body = f"""## Analytics overhead (`bench/analytics_overhead.py`)

GET /api/v1/search/?q=<test-split title>&limit=24 in the default mode (`{search_settings.DEFAULT_MODE}`),
{arguments.requests} queries each sent to two `manage.py runserver --noreload --nothreading` servers (DEBUG
off) on the same database, one recording searches (`SEARCH_ANALYTICS=1`: a pipelined append to the
Redis buffer per search, a flush task queued at most every {search_settings.ANALYTICS_FLUSH_INTERVAL_S} s)
and one not (`=0`), in a random order per pair, after 20 warm-up pairs; {Product.objects.count():,} Myntra
products, model version `{version.name}` on CPU.

{table}

**{summary}.** Recording adds one Redis round trip to a search; the difference is within the noise of
a search when its interval holds 0 or is a small fraction of the p50. The flush then wrote the
{buffered} buffered searches to the log in {flush_s * 1000:.0f} ms ({buffered / max(flush_s, 1e-9):,.0f}
searches/s), off the search's path. Machine: {os.cpu_count()} CPU cores, 1-minute load average
{load_before:.1f} before the run and {os.getloadavg()[0]:.1f} after it.
"""
    if not arguments.no_write:
        write_section("analytics-overhead", body)
        print("Wrote the analytics-overhead section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
