"""Load: the search API under a closed loop of 1 to 32 concurrent clients, on `manage.py serve`
(gunicorn, config/gunicorn.conf.py) and, as the baseline in the same run, on `runserver` (the server
the demo used before).

    .venv/bin/python bench/load.py [--seconds 12] [--levels 1,2,4,8,16,32] [--servers serve,runserver]

Loopback only, throttling off, DEBUG off. Each client sends its next request when the last answered:
60 % text searches (titles and attribute phrases of the catalogue), 20 % photo searches (the
catalogue's own photos, uploaded), 20 % "more like this". The database is `product_search_bench_load`
with the committed sample catalogue (240 products) and the default model. Per level: requests per
second, p50 / p95 / p99 latency, answers by status class, and the most PostgreSQL connections the
database had open at once. The knee is the smallest level past which throughput grows by less than
10 % while p95 keeps growing. Client and server share this machine's cores.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import runpy
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchmarks_file import markdown_table, write_section  # noqa: E402
from bench.search_latency import free_port  # noqa: E402

DATABASE = "product_search_bench_load"
SAMPLE_CATALOG = ROOT / "catalog" / "sample_catalog" / "catalog.jsonl"
SERVER_COMMANDS = {
    "serve": ["manage.py", "serve", "--no-worker"],
    "runserver": ["manage.py", "runserver", "--noreload"],
}


@dataclass
class Workload:
    queries: list[str]
    skus: list[str]
    photos: list[bytes]


@dataclass
class LevelResult:
    server: str
    clients: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    max_connections: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)


def workload_prepare() -> Workload:
    from bench.django_setup import setup

    setup(database=DATABASE)
    from bench.search_quality import bench_version_ready
    from catalog.importing import catalog_import
    from catalog.models import Product, ProductImage

    if not Product.objects.exists():
        print(f"Importing {SAMPLE_CATALOG.relative_to(ROOT)}", flush=True)
        catalog_import(path=SAMPLE_CATALOG)
    bench_version_ready()
    products = list(Product.objects.filter(is_active=True).order_by("pk"))
    queries = [product.title for product in products]
    queries += sorted({f"{p.gender} {p.colour} {p.article_type}" for p in products if p.colour})
    photos = []
    for image in ProductImage.objects.order_by("pk")[:40]:
        with image.image.open("rb") as handle:
            photos.append(handle.read())
    return Workload(queries=queries, skus=[product.sku for product in products], photos=photos)


def _multipart(photo: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    body.write(f"--{boundary}\r\n".encode())
    body.write(b'Content-Disposition: form-data; name="photo"; filename="query.jpg"\r\n')
    body.write(b"Content-Type: image/jpeg\r\n\r\n")
    body.write(photo)
    body.write(f"\r\n--{boundary}--\r\n".encode())
    return body.getvalue(), f"multipart/form-data; boundary={boundary}"


def _client_loop(port: int, workload: Workload, stop: threading.Event, result: LevelResult, seed: int):
    chooser = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set():
        roll = chooser.random()
        headers: dict[str, str] = {}
        body = None
        if roll < 0.6:
            method = "GET"
            path = "/api/v1/search/?" + urllib.parse.urlencode({"q": chooser.choice(workload.queries)})
        elif roll < 0.8:
            method = "POST"
            path = "/api/v1/search/image/"
            body, headers["Content-Type"] = _multipart(chooser.choice(workload.photos))
        else:
            method = "GET"
            path = f"/api/v1/products/{urllib.parse.quote(chooser.choice(workload.skus))}/similar/"
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
        except (OSError, http.client.HTTPException) as error:
            result.errors[type(error).__name__] += 1
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            time.sleep(0.05)
            continue
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        result.statuses[status] += 1
    connection.close()


def _count_connections(stop: threading.Event, result: LevelResult) -> None:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        while not stop.is_set():
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (DATABASE,),
            ).fetchone()
            result.max_connections = max(result.max_connections, int(row[0]))
            stop.wait(0.25)


def _run_clients(
    *, port: int, clients: int, seconds: float, workload: Workload, result: LevelResult, seed: int
):
    stop = threading.Event()
    threads = [
        threading.Thread(target=_client_loop, args=(port, workload, stop, result, seed + n), daemon=True)
        for n in range(clients)
    ]
    threads.append(threading.Thread(target=_count_connections, args=(stop, result), daemon=True))
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started


def run_level(*, server: str, port: int, clients: int, seconds: float, workload: Workload) -> LevelResult:
    """A short unmeasured warm-up at the level (connections opened, caches warm), then the measure."""
    warmup = LevelResult(server, clients, 0)
    _run_clients(port=port, clients=clients, seconds=2.0, workload=workload, result=warmup, seed=0)
    result = LevelResult(server, clients, seconds)
    _run_clients(port=port, clients=clients, seconds=seconds, workload=workload, result=result, seed=1000)
    result.statuses.update({status: 0 for status in warmup.statuses if status >= 500})
    result.max_connections = max(result.max_connections, warmup.max_connections)
    return result


def start_server(kind: str, port: int, log_path: Path) -> subprocess.Popen:
    environment = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-not-used-elsewhere-0123456789",
        "SEARCH_THROTTLE_ANON_RATE": "off",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "ACCESS_LOG": "",
    }
    from django.db import connections

    connections.close_all()
    log = log_path.open("wb")
    server = subprocess.Popen(
        [sys.executable, *SERVER_COMMANDS[kind], f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/api/v1/search/?q=shirt")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            pass
        if server.poll() is not None:
            raise RuntimeError(f"{kind} exited: {log_path.read_text()[-3000:]}")
        time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"{kind} did not answer within 180 s")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def knee(results: list[LevelResult]) -> int | None:
    for previous, current in zip(results, results[1:], strict=False):
        gain = (current.requests / current.seconds) / max(previous.requests / previous.seconds, 1e-9)
        if gain < 1.10 and current.percentile(95) > previous.percentile(95):
            return previous.clients
    return None


def _row(result: LevelResult) -> list[object]:
    other_4xx = sum(count for status, count in result.statuses.items() if 400 <= status < 500)
    return [
        result.server,
        result.clients,
        f"{result.requests / result.seconds:.1f}",
        f"{result.percentile(50):.0f}",
        f"{result.percentile(95):.0f}",
        f"{result.percentile(99):.0f}",
        result.requests,
        result.server_errors,
        other_4xx,
        sum(result.errors.values()),
        result.max_connections,
    ]


def report(
    results: list[LevelResult], *, seconds: float, workers: int, threads: int, load_before: float
) -> str:
    header = [
        "server",
        "clients",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "requests",
        "5xx",
        "4xx",
        "no answer",
        "max DB connections",
    ]
    lines = [
        "## Load: the search API under 1 to 32 concurrent clients (`python bench/load.py`)",
        "",
        f"Closed loop on loopback, {seconds:.0f} s per level after a 2 s warm-up; 60 % text, 20 % photo, "
        "20 % similar; throttling off, DEBUG off; the 240-product sample catalogue with the default model; "
        f"{os.cpu_count()} cores shared by the clients and the server. `serve` is `manage.py serve` "
        f"(gunicorn, {workers} workers x {threads} threads, the model loaded before fork); `runserver` is "
        "Django's development server, which the demo used before, as the baseline. Load average "
        f"before the run: {load_before:.1f} (other jobs on the machine share its cores).",
        "",
        markdown_table(header, [_row(result) for result in results]),
        "",
    ]
    for server in sorted({result.server for result in results}):
        rows = [result for result in results if result.server == server]
        point = knee(rows)
        errors = sum(result.server_errors for result in rows)
        lines.append(
            f"- `{server}`: {errors} answers 5xx in all; throughput stops growing after "
            + (f"{point} clients (the knee)." if point else "the last level measured (no knee in range).")
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--levels", default="1,2,4,8,16,32")
    parser.add_argument("--servers", default="serve,runserver")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md")
    arguments = parser.parse_args()
    levels = [int(level) for level in arguments.levels.split(",")]
    load_before = os.getloadavg()[0]
    workload = workload_prepare()
    log_dir = ROOT / "bench" / "out"
    log_dir.mkdir(parents=True, exist_ok=True)
    results: list[LevelResult] = []
    for kind in arguments.servers.split(","):
        port = free_port()
        server = start_server(kind, port, log_dir / f"load-{kind}.log")
        try:
            for clients in levels:
                result = run_level(
                    server=kind, port=port, clients=clients, seconds=arguments.seconds, workload=workload
                )
                results.append(result)
                print(
                    json.dumps(
                        dict(
                            zip(
                                [
                                    "server",
                                    "clients",
                                    "req/s",
                                    "p50",
                                    "p95",
                                    "p99",
                                    "requests",
                                    "5xx",
                                    "4xx",
                                    "no answer",
                                    "connections",
                                ],
                                _row(result),
                                strict=True,
                            )
                        )
                    ),
                    flush=True,
                )
        finally:
            stop_server(server)
    server_settings = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    workers, threads = server_settings["workers"], server_settings["threads"]
    text = report(
        results, seconds=arguments.seconds, workers=workers, threads=threads, load_before=load_before
    )
    print(text)
    if not arguments.no_write:
        write_section("load", text)


if __name__ == "__main__":
    main()
