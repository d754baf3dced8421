"""float32 `vector` against `halfvec` for the embedding column: size, HNSW build time, query latency
and recall@10 against exact float32 search, on the same vectors in the same run.

    python bench/vector_storage.py [--embeddings vectors.npy] [--rows 19166] [--dim 512]

Without --embeddings it uses clustered synthetic unit vectors (products come in look-alike groups);
with a .npy of real model embeddings it measures those.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import django_setup
from benchmarks_file import markdown_table, write_section


def synthetic_vectors(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(rows // 8, 1), dim)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), rows)] + 0.6 * rng.standard_normal((rows, dim)).astype(
        np.float32
    )
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"


def measure(cursor, column_type: str, data: np.ndarray, queries: np.ndarray, exact: np.ndarray) -> list:
    dim = data.shape[1]
    table = f"bench_vectors_{column_type}"
    cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, embedding {column_type}({dim}))")
    with cursor.copy(f"COPY {table} (id, embedding) FROM STDIN") as copy:
        for index, vector in enumerate(data):
            copy.write_row((index, literal(vector)))
    started = time.perf_counter()
    cursor.execute(f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding {column_type}_cosine_ops)")
    build_seconds = time.perf_counter() - started
    cursor.execute(f"ANALYZE {table}")
    # pg_table_size counts TOAST: a 512-d float32 vector (2 KB) is stored out of line there.
    cursor.execute(f"SELECT pg_table_size('{table}'), pg_relation_size('{table}_hnsw')")
    table_bytes, index_bytes = cursor.fetchone()

    latencies, recalls = [], []
    sql = f"SELECT id FROM {table} ORDER BY embedding <=> %s::{column_type}({dim}) LIMIT 10"
    for query in queries:  # warm the cache: both columns are timed from memory
        cursor.execute(sql, (literal(query),))
        cursor.fetchall()
    for query, truth in zip(queries, exact, strict=True):
        started = time.perf_counter()
        cursor.execute(sql, (literal(query),))
        found = [row[0] for row in cursor.fetchall()]
        latencies.append((time.perf_counter() - started) * 1000)
        recalls.append(len(set(found) & set(truth.tolist())) / 10)
    cursor.execute(f"EXPLAIN {sql}", (literal(queries[0]),))
    uses_index = any(f"{table}_hnsw" in row[0] for row in cursor.fetchall())
    cursor.execute(f"DROP TABLE {table}")
    latencies.sort()
    return [
        column_type,
        f"{table_bytes / 2**20:.1f}",
        f"{index_bytes / 2**20:.1f}",
        f"{build_seconds:.1f}",
        f"{statistics.median(latencies):.2f}",
        f"{latencies[int(0.95 * len(latencies)) - 1]:.2f}",
        f"{statistics.mean(recalls):.3f}",
        "yes" if uses_index else "NO",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--embeddings", help=".npy of real embeddings (rows x dim)")
    parser.add_argument("--rows", type=int, default=19_166, help="9,583 products x (photo + text)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()

    django_setup.setup()
    from django.db import connection

    if args.embeddings:
        everything = np.load(args.embeddings).astype(np.float32)
        everything /= np.linalg.norm(everything, axis=1, keepdims=True)
        source = f"real embeddings from `{args.embeddings}`"
    else:
        everything = synthetic_vectors(args.rows + args.queries, args.dim)
        source = "clustered synthetic unit vectors"
    data, queries = everything[: -args.queries], everything[-args.queries :]
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10]

    rows = []
    with connection.cursor() as cursor:
        for column_type in ("vector", "halfvec"):
            rows.append(measure(cursor.cursor, column_type, data, queries, exact))
            print(rows[-1])
    table = markdown_table(
        [
            "column",
            "table MB",
            "HNSW MB",
            "build s",
            "query p50 ms",
            "query p95 ms",
            "recall@10",
            "index used",
        ],
        rows,
    )
    write_section(
        "vector-storage",
        f"## Embedding storage: float32 `vector` against `halfvec`\n\n"
        f"`python bench/vector_storage.py{' --embeddings ' + args.embeddings if args.embeddings else ''}`: "
        f"{len(data)} rows of {data.shape[1]} dimensions ({source}), {len(queries)} queries, "
        f"HNSW m=16, ef_construction=64, ef_search=40 (defaults), recall against exact float32 search.\n\n"
        f"{table}\n",
    )


if __name__ == "__main__":
    main()
