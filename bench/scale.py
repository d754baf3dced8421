"""Search at 10k, 100k and 1M products: load, HNSW build, recall, filtered pages, API latency and
throughput, memory; against raw SQL on the same data, in the same run.

    .venv/bin/python bench/scale.py [--sizes 10000,100000,1000000] [--spread S] [--no-write]

Vectors: the shipped default model's real vectors of the 9,583 Myntra products (text: the product
text; photo: the catalogue photo), computed once and cached under var/bench-scale/. A catalogue of N
products copies base product i % 9,583 (title, brand, colour, article type, gender, ... with a unique
sku): the first 9,583 are the real products, each further one a variant of its base (scaled_chunks:
moved along the directions from the base to its nearest real products by Gaussian weights of
deviation `--spread`, plus a little isotropic noise). The nearest-neighbour distance of each scaled
set is reported beside the real catalogue's own trend: measured on its subsets up to all 9,583
products and extrapolated by the power law they follow (real_neighbour_trend).

Each size is a stage of its own, in a database of its own (`product_search_scale_<N>`), and resumes:
the catalogue is loaded once (product and photo rows by COPY, vectors through the project's write
path, `lifecycle.embedding_pipeline.embeddings_insert`, the COPY the embedding pipeline writes with) and its
HNSW indexes built once by lifecycle/vector_indexes.py; each size's measures are saved to
var/bench-scale/results-<N>.json, and the BENCHMARKS.md section and the plots (bench/plots/) are made
from every size measured so far.

Measured per size: load and HNSW build times and sizes; recall@10 of the text index against exact
search (NumPy over the stored halfvec values) over `ef_search`, unfiltered and under a ~1 % and a
~10 % column filter (full pages and recall, iterative scan on and off); the API's own ranking
(search.ranking.rank_by_vectors with its shipped settings); GET /api/v1/search/ p50/p95/p99 against its
floor (query encode + the raw SQL) on `manage.py serve`, throughput at 1, 4 and 16 clients there
(bench/load.py's closed loop), PostgreSQL's and one web worker's memory; halfvec against float32 and
binary quantisation with re-ranking (size, build, recall, latency).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.django_setup import setup  # noqa: E402

CATALOGUE = ROOT.parent / "shared" / "datasets" / "myntra" / "catalog.jsonl"
CACHE = ROOT / "var" / "bench-scale"
QUERY_COUNT = 200
SEED = 0


def catalogue_rows(path: Path) -> list[dict]:
    if not path.exists():
        raise SystemExit(f"No catalogue at {path}: pass --catalog PATH (the Myntra catalog.jsonl).")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def base_vectors(rows: list[dict], catalogue: Path) -> tuple[np.ndarray, np.ndarray]:
    """(text, photo) vectors of the catalogue rows from the shipped default model, cached as .npy."""
    text_path, photo_path = CACHE / "base-text.npy", CACHE / "base-photo.npy"
    skus_path = CACHE / "base-skus.json"
    skus = [row["sku"] for row in rows]
    if text_path.exists() and photo_path.exists() and json.loads(skus_path.read_text()) == skus:
        return np.load(text_path), np.load(photo_path)
    from catalog.product_text import product_text_from_fields
    from mlcore.default_model import default_model_path
    from mlcore.inference import Encoder

    CACHE.mkdir(parents=True, exist_ok=True)
    encoder = Encoder.load(default_model_path(), device="cpu", runtime="onnx")
    texts = [product_text_from_fields(row) for row in rows]
    batch = 256
    text = np.concatenate(
        [
            encoder.encode_texts(texts[start : start + batch])
            for start in tqdm(range(0, len(texts), batch), desc="encode base texts", unit="batch")
        ]
    )
    photos = [catalogue.parent / row["image"] for row in rows]
    batch = 32
    photo = np.concatenate(
        [
            encoder.encode_images(photos[start : start + batch])
            for start in tqdm(range(0, len(photos), batch), desc="encode base photos", unit="batch")
        ]
    )
    np.save(text_path, text.astype(np.float32))
    np.save(photo_path, photo.astype(np.float32))
    skus_path.write_text(json.dumps(skus))
    return text, photo


def size_label(size: int) -> str:
    return (
        f"{size // 1_000_000}m"
        if size % 1_000_000 == 0
        else f"{size // 1000}k"
        if size % 1000 == 0
        else str(size)
    )


def size_database(size: int) -> str:
    return f"product_search_scale_{size_label(size)}"


def results_path(size: int) -> Path:
    return CACHE / f"results-{size_label(size)}.json"


CHUNK = 10_000
KINDS = ("text", "image")


# A scaled product moves its base product along the directions to the base's BLEND_PARTNERS nearest real
# products (by text vector), by Gaussian weights of deviation SPREAD, then adds noise of a norm drawn up to
# NOISE. The variants of a base fill a region of as many dimensions as it has partners: the real catalogue's
# nearest-neighbour distance falls with its size at the rate of about that many dimensions, and SPREAD sets
# the level (both checked against real_neighbour_trend in the report). Isotropic noise alone, in 587
# dimensions, keeps every variant as far from all others at any size; one partner at a small weight made
# near-duplicates.
BLEND_PARTNERS = 5
SPREAD = 0.45
NOISE = 0.03
_partners: dict[int, np.ndarray] = {}


def blend_partners(text: np.ndarray) -> np.ndarray:
    """Each base product's BLEND_PARTNERS nearest other base products by text vector (cached)."""
    if id(text) not in _partners:
        partners = np.empty((len(text), BLEND_PARTNERS), dtype=np.int64)
        for first in range(0, len(text), 2048):
            similarity = text[first : first + 2048] @ text.T
            similarity[np.arange(len(similarity)), np.arange(first, first + len(similarity))] = -2.0
            partners[first : first + 2048] = np.argsort(-similarity, axis=1)[:, :BLEND_PARTNERS]
        _partners[id(text)] = partners
    return _partners[id(text)]


def scaled_chunks(
    base: dict[str, np.ndarray], *, size: int, spread: float, kind: str, start: int = 0, noise: float = NOISE
):
    """(first index, float32 unit vectors of `kind`) of products start.. in chunks.

    Product j < len(base) is real product j as it is. A further product j is a variant of base product
    i = j % len(base): i's vector plus w_k times the difference to each of i's BLEND_PARTNERS nearest
    real products, w_k Gaussian of deviation `spread` (the same weights for its text and its photo),
    plus isotropic Gaussian noise of a norm drawn from [0, noise], renormalised. Deterministic per
    (kind, chunk)."""
    vectors_of_kind, partners = base[kind], blend_partners(base["text"])
    count, dim = vectors_of_kind.shape
    for first in range(start - start % CHUNK, size, CHUNK):
        last = min(first + CHUNK, size)
        ids = np.arange(first, last)
        shared = np.random.default_rng([SEED, first // CHUNK])  # the same draws for text and photo
        weights = shared.normal(0.0, spread, (len(ids), BLEND_PARTNERS)).astype(np.float32)
        noise_norm = shared.uniform(0.0, noise, len(ids)).astype(np.float32)
        weights[ids < count] = 0.0
        noise_norm[ids < count] = 0.0
        own_vectors = vectors_of_kind[ids % count]
        towards = vectors_of_kind[partners[ids % count]] - own_vectors[:, None, :]
        own = np.random.default_rng([SEED, KINDS.index(kind), first // CHUNK])
        vectors = (
            own_vectors
            + np.einsum("nk,nkd->nd", weights, towards)
            + own.standard_normal((len(ids), dim), dtype=np.float32) * (noise_norm / np.sqrt(dim))[:, None]
        )
        yield first, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def as_stored(vectors: np.ndarray) -> np.ndarray:
    """What a halfvec column holds: float16 values (read back as float32)."""
    return np.asarray(vectors, dtype=np.float32).astype(np.float16).astype(np.float32)


def query_set(rows: list[dict]) -> tuple[list[str], np.ndarray]:
    """QUERY_COUNT shopper-like texts (half titles, half "gender colour article type" phrases of
    random catalogue products) and their vectors from the default model, cached."""
    texts_path, vectors_path = CACHE / "queries.json", CACHE / "queries.npy"
    rng = np.random.default_rng(SEED)
    picked = [rows[int(i)] for i in rng.choice(len(rows), QUERY_COUNT, replace=False)]
    half = QUERY_COUNT // 2
    texts = [row["title"] for row in picked[:half]]
    texts += [f"{row['gender']} {row['colour']} {row['article_type']}" for row in picked[half:]]
    if texts_path.exists() and vectors_path.exists() and json.loads(texts_path.read_text()) == texts:
        return texts, np.load(vectors_path)
    from mlcore.default_model import default_model_path
    from mlcore.inference import Encoder

    vectors = Encoder.load(default_model_path(), device="cpu").encode_texts(texts)
    texts_path.write_text(json.dumps(texts))
    np.save(vectors_path, vectors.astype(np.float32))
    return texts, vectors


def filters_pick(rows: list[dict]) -> dict[str, tuple[str, str, float]]:
    """A column filter near 1 % and one near 10 % of the products (closest by ratio), with its share."""
    from collections import Counter

    def closest(columns: tuple[str, ...], target: float) -> tuple[str, str, float]:
        shares = [
            (column, value, count / len(rows))
            for column in columns
            for value, count in Counter(row[column] for row in rows).items()
            if value
        ]
        return min(shares, key=lambda item: (abs(np.log(item[2] / target)), item[0], item[1]))

    return {"1%": closest(("brand",), 0.01), "10%": closest(("article_type", "colour"), 0.10)}


class ExactTopK:
    """Exact top-k by cosine over the stored (halfvec) values, fed chunk by chunk, per product mask."""

    def __init__(self, queries: np.ndarray, k: int, masks: dict[str, np.ndarray | None]):
        self.queries = as_stored(queries)
        self.queries /= np.linalg.norm(self.queries, axis=1, keepdims=True)
        self.k, self.masks = k, masks
        count = len(queries)
        self.best = {
            name: (np.full((count, 0), -2.0), np.zeros((count, 0), dtype=np.int64)) for name in masks
        }

    def add(self, first: int, vectors: np.ndarray) -> None:
        stored = as_stored(vectors)
        similarity = (self.queries @ stored.T) / np.linalg.norm(stored, axis=1)
        indexes = np.arange(first, first + len(stored))
        for name, mask in self.masks.items():
            scores, ids = similarity, indexes
            if mask is not None:
                keep = mask[first : first + len(stored)]
                scores, ids = similarity[:, keep], indexes[keep]
            old_scores, old_ids = self.best[name]
            merged_scores = np.concatenate([old_scores, scores], axis=1)
            merged_ids = np.concatenate([old_ids, np.broadcast_to(ids, scores.shape)], axis=1)
            top = np.argsort(-merged_scores, axis=1, kind="stable")[:, : self.k]
            self.best[name] = (
                np.take_along_axis(merged_scores, top, axis=1),
                np.take_along_axis(merged_ids, top, axis=1),
            )

    def top(self, name: str) -> np.ndarray:
        return self.best[name][1]


def neighbour_distances(chunks, sample: np.ndarray, sample_vectors: np.ndarray) -> np.ndarray:
    """Cosine distance of each sampled product (ids `sample`) to its nearest other product, over the
    stored values of every (first id, vectors) chunk."""
    queries = as_stored(sample_vectors)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    best = np.full(len(sample), -2.0)
    for first, vectors in chunks:
        stored = as_stored(vectors)
        similarity = (queries @ stored.T) / np.linalg.norm(stored, axis=1)
        own = (sample >= first) & (sample < first + len(stored))
        similarity[np.nonzero(own)[0], sample[own] - first] = -2.0
        best = np.maximum(best, similarity.max(axis=1))
    return 1 - best


def scaled_sample(
    base: dict[str, np.ndarray], *, size: int, spread: float, count: int = 300
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, text vectors) of `count` products drawn at random from the whole scaled catalogue, as the
    real catalogue's trend draws them from the whole of it: real products sit at the centre of their
    variants, so a sample of them alone reads the catalogue denser than it is."""
    ids = np.sort(np.random.default_rng(SEED).choice(size, count, replace=False))
    vectors = np.empty((count, base["text"].shape[1]), dtype=np.float32)
    for first in np.unique(ids - ids % CHUNK):
        chunk = next(scaled_chunks(base, size=size, spread=spread, kind="text", start=int(first)))[1]
        inside = (ids >= first) & (ids < first + CHUNK)
        vectors[inside] = chunk[ids[inside] - first]
    return ids, vectors


def neighbour_distance_measure(base: dict[str, np.ndarray], *, size: int, spread: float) -> dict:
    """The scaled catalogue's nearest-neighbour distances (text vectors, a random sample) beside the
    real catalogue's trend and what it predicts at this size."""
    sample, sample_vectors = scaled_sample(base, size=size, spread=spread)
    chunks = scaled_chunks(base, size=size, spread=spread, kind="text")
    scaled = neighbour_distances(
        tqdm(chunks, total=-(-size // CHUNK), desc="nearest neighbours", unit="chunk"), sample, sample_vectors
    )
    trend = real_neighbour_trend(base["text"])
    return {
        "real_trend": trend,
        "real_expected": real_neighbour_expected(trend, size),
        "scaled": quantiles(scaled),
    }


def real_neighbour_trend(text: np.ndarray, *, samples: int = 1000, repeats: int = 5) -> dict:
    """How the real catalogue's nearest-neighbour distance falls with its size: its p50 and p90 over
    random subsets of 1/16 .. all of it, and the power law (slope in log-log) each follows, so that a
    scaled catalogue can be compared with what more real products of this shop would look like."""
    rng = np.random.default_rng(SEED)
    count = len(text)
    measured: dict[int, dict[str, float]] = {}
    for share in (16, 8, 4, 2, 1):
        size = count // share
        runs = []
        for _ in range(repeats if share > 1 else 1):
            subset = rng.choice(count, size, replace=False) if share > 1 else np.arange(count)
            sample = rng.choice(size, min(samples, size), replace=False)
            vectors = text[subset]
            runs.append(neighbour_distances([(0, vectors)], sample, vectors[sample]))
        measured[size] = {
            "p50": round(float(np.mean([np.percentile(run, 50) for run in runs])), 4),
            "p90": round(float(np.mean([np.percentile(run, 90) for run in runs])), 4),
        }
    sizes = np.log(np.array(list(measured)))
    slopes = {
        quantile: round(
            float(np.polyfit(sizes, np.log([row[quantile] for row in measured.values()]), 1)[0]), 3
        )
        for quantile in ("p50", "p90")
    }
    return {"measured": {str(size): row for size, row in measured.items()}, "slope": slopes}


def real_neighbour_expected(trend: dict, size: int) -> dict[str, float]:
    """The real catalogue's p50 / p90 nearest-neighbour distance at `size`: measured up to its own size,
    extrapolated from its largest measure by the fitted power law beyond."""
    largest = max(trend["measured"], key=int)
    return {
        quantile: round(value * (size / int(largest)) ** min(trend["slope"][quantile], 0.0), 4)
        for quantile, value in trend["measured"][largest].items()
    }


def quantiles(values: np.ndarray) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(values, q)), 4) for q in (10, 50, 90)}


VERSION_NAME = "scale-default"


def catalogue_load(*, rows: list[dict], size: int, base: dict[str, np.ndarray], spread: float) -> dict:
    """Empty the size's database and load it: product and photo rows by COPY, the vectors of every
    product through lifecycle.embedding_pipeline.embeddings_insert (the embedding pipeline's write), then the
    version's HNSW indexes (lifecycle.vector_indexes) and its activation. Returns the timings."""
    from django.db import connection, transaction

    from catalog.importing import TEXT_COLUMNS
    from lifecycle.embedding_pipeline import embeddings_insert
    from lifecycle.model_versions import model_version_activate, model_version_register_checkpoint
    from lifecycle.models import ModelVersion, ProductEmbedding
    from lifecycle.vector_indexes import vector_index_build_memory_mb, vector_index_create
    from mlcore.default_model import default_model_path

    timings: dict = {}
    with connection.cursor() as cursor:
        # Indexes outlive TRUNCATE; a version's are named by its id, which restarts at 1 below.
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'catalog_productembedding'"
            " AND indexname LIKE '%%hnsw'"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("TRUNCATE catalog_product, catalog_modelversion RESTART IDENTITY CASCADE")
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        columns = ", ".join(TEXT_COLUMNS)
        with cursor.cursor.copy(
            f"COPY catalog_product (sku, {columns}, attributes, is_active, source, embedding_dirty, created_at,"
            " updated_at) FROM STDIN"
        ) as copy:
            for index in tqdm(range(size), desc="COPY products", unit="row", mininterval=2):
                row = rows[index % len(rows)]
                copy.write_row(
                    (
                        f"scale-{index:07d}",
                        *(row.get(column) or "" for column in TEXT_COLUMNS),
                        json.dumps(row.get("attributes") or {}),
                        True,
                        "",
                        False,
                        "now",
                        "now",
                    )
                )
        with cursor.cursor.copy(
            "COPY catalog_productimage (product_id, image, position, width, height, content_sha256,"
            " source_sha256, created_at, updated_at) FROM STDIN"
        ) as copy:
            for index in tqdm(range(size), desc="COPY photos", unit="row", mininterval=2):
                sku = rows[index % len(rows)]["sku"]
                copy.write_row(
                    (index + 1, f"bench-scale/{sku}.jpg", 0, 1080, 1440, f"{index:064x}", "", "now", "now")
                )
    timings["rows_s"] = time.perf_counter() - started
    version = model_version_register_checkpoint(path=default_model_path(), name=VERSION_NAME)
    started = time.perf_counter()
    batch = 2000
    with tqdm(total=2 * size, desc="embeddings_insert vectors", unit="vector", mininterval=2) as bar:
        for (first, text), (_, photo) in zip(
            scaled_chunks(base, size=size, spread=spread, kind="text"),
            scaled_chunks(base, size=size, spread=spread, kind="image"),
            strict=True,
        ):
            for offset in range(0, len(text), batch):
                ids = range(first + offset + 1, first + min(offset + batch, len(text)) + 1)
                vectors = [
                    ProductEmbedding(model_version=version, product_id=i, kind="text", embedding=v)
                    for i, v in zip(ids, text[offset : offset + batch], strict=True)
                ]
                vectors += [
                    ProductEmbedding(
                        model_version=version, product_id=i, image_id=i, kind="image", embedding=v
                    )
                    for i, v in zip(ids, photo[offset : offset + batch], strict=True)
                ]
                with transaction.atomic():
                    embeddings_insert(vectors)
                bar.update(len(vectors))
    timings["vectors_s"] = time.perf_counter() - started
    timings["copy_probe"] = vectors_copy_probe(base, spread=spread, count=min(2 * size, 20_000))
    notices: list[str] = []
    connection.ensure_connection()
    connection.connection.add_notice_handler(lambda notice: notices.append(notice.message_primary))
    with connection.cursor() as cursor:
        # What vector_index_create sets for the build of each index (sized to its vectors).
        memory_mb = vector_index_build_memory_mb(vectors=size, dim=int(version.embedding_dim or 0))
        timings["maintenance_work_mem"] = f"{memory_mb}MB"
        cursor.execute("SHOW max_parallel_maintenance_workers")
        timings["max_parallel_maintenance_workers"] = int(cursor.fetchone()[0])
    print("Building the HNSW indexes (lifecycle.vector_indexes.vector_index_create)", flush=True)
    started = time.perf_counter()
    vector_index_create(version=version)
    timings["hnsw_build_s"] = time.perf_counter() - started
    timings["hnsw_notices"] = sorted(set(notices))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_product")
        cursor.execute("ANALYZE catalog_productembedding")
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.READY)
    version.refresh_from_db()
    model_version_activate(version=version)
    return timings


def vectors_copy_probe(base: dict[str, np.ndarray], *, spread: float, count: int) -> dict:
    """The other way to write vectors, for comparison: binary COPY (pgvector's psycopg adapter) of
    `count` vectors into a TEMP copy of the embeddings table with its btree indexes, on a connection of
    its own (the adapter changes how a connection reads vectors)."""
    import os

    import psycopg
    from pgvector import HalfVector
    from pgvector.psycopg import register_vector

    with psycopg.connect(os.environ["DATABASE_URL"]) as probe:
        register_vector(probe)
        probe.execute(
            "CREATE TEMP TABLE copy_probe (LIKE catalog_productembedding INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES)"
        )
        vectors = next(scaled_chunks(base, size=count, spread=spread, kind="text"))[1]
        vectors = np.concatenate([vectors] * -(-count // len(vectors)))[:count]
        started = time.perf_counter()
        with probe.cursor().copy(
            "COPY copy_probe (model_version_id, product_id, kind, embedding, created_at) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int8", "varchar", "halfvec", "timestamptz"])
            stamp = datetime.now(UTC)
            for index, vector in enumerate(vectors):
                copy.write_row((1, index + 1, "text", HalfVector(vector), stamp))
        probe.commit()
        return {"vectors": count, "seconds": time.perf_counter() - started}


def scan_options(cursor, *, ef_search: int, iterative: bool, scan_tuples_factor: int = 1) -> None:
    """The transaction's HNSW options as search.ranking sets them, with an explicit ef_search (and
    max_scan_tuples `scan_tuples_factor` times the shipped one)."""
    from search.conf import search_settings

    scan_tuples = int(search_settings.MAX_SCAN_TUPLES) * scan_tuples_factor
    cursor.execute(
        "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', %s, true),"
        " set_config('hnsw.max_scan_tuples', %s, true)",
        [str(ef_search), "relaxed_order" if iterative else "off", str(scan_tuples)],
    )


def timed_nearest(
    *, sql: str, params: dict, ef_search: int, iterative: bool, scan_tuples_factor: int = 1
) -> tuple[float, list[int]]:
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        scan_options(cursor, ef_search=ef_search, iterative=iterative, scan_tuples_factor=scan_tuples_factor)
        cursor.execute(sql, params)
        found = [row[0] for row in cursor.fetchall()]
    return (time.perf_counter() - started) * 1000, found


def recall_at(found: list[int], truth: np.ndarray, k: int = 10) -> float:
    return len(set(found[:k]) & set(truth[:k].tolist())) / k


def percentile_dict(values: list[float]) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(values, q)), 2) for q in (50, 95, 99)}


EF_VALUES = (20, 40, 80, 160, 320, 640)


def recall_measure(*, version, queries: np.ndarray, truth: ExactTopK, picked: dict, image_truth) -> dict:
    """recall@10, full pages and latency of the raw index query over ef_search, and of the API's own
    ranking with its shipped settings, unfiltered and under each picked filter."""
    from search.ranking import SearchFilters, nearest_sql, vector_literal
    from search.selectors import _candidate_count, _text_nearest

    filters = {"none": SearchFilters()}
    filters.update(
        {name: SearchFilters(values={column: (value,)}) for name, (column, value, _) in picked.items()}
    )
    literals = [vector_literal(query) for query in queries]
    cases = [("text", name, True, ef, 1) for name in filters for ef in EF_VALUES]
    cases += [("image", "none", True, ef, 1) for ef in EF_VALUES]
    cases += [("text", name, False, 40, 1) for name in picked]
    cases += [("text", name, True, 40, 10) for name in picked]
    sweep = []
    warmed: set[tuple[str, str]] = set()
    for kind, name, iterative, ef, factor in tqdm(cases, desc="recall over ef_search", unit="setting"):
        sql, params = nearest_sql(version=version, kind=kind, k=10, filters=filters[name])
        expected = (image_truth if kind == "image" else truth).top(name)
        if (kind, name) not in warmed:  # the first pass reads the index from disk
            for literal in literals:
                timed_nearest(sql=sql, params={**params, f"q_{kind}": literal}, ef_search=ef, iterative=True)
            warmed.add((kind, name))
        latencies, recalls, full = [], [], 0
        for literal, wanted in zip(literals, expected, strict=True):
            ms, found = timed_nearest(
                sql=sql,
                params={**params, f"q_{kind}": literal},
                ef_search=ef,
                iterative=iterative,
                scan_tuples_factor=factor,
            )
            latencies.append(ms)
            recalls.append(recall_at([product_id - 1 for product_id in found], wanted))
            full += len(found) == 10
        sweep.append(
            {
                "kind": kind,
                "filter": name,
                "iterative": iterative,
                "ef_search": ef,
                "scan_tuples_factor": factor,
                "recall_at_10": round(float(np.mean(recalls)), 4),
                "full_pages": round(full / len(literals), 4),
                **percentile_dict(latencies),
            }
        )
    api = []
    page = 24
    k = _candidate_count(offset=0, limit=page)
    for name, under in tqdm(filters.items(), desc="the API's ranking", unit="filter"):
        recalls, full, latencies = [], 0, []
        for query, wanted in zip(queries, truth.top(name), strict=True):
            started = time.perf_counter()
            ranking = _text_nearest(version=version, vector=query)(under, k)
            latencies.append((time.perf_counter() - started) * 1000)
            recalls.append(recall_at([candidate.product_id - 1 for candidate in ranking], wanted))
            full += len(ranking) >= page
        api.append(
            {
                "filter": name,
                "candidates": k,
                "recall_at_10": round(float(np.mean(recalls)), 4),
                "full_pages": round(full / len(queries), 4),
                **percentile_dict(latencies),
            }
        )
    return {"sweep": sweep, "api_ranking": api}


def postgres_memory(database: str) -> dict:
    """This database's backends (RSS, which counts the shared buffers they touched, and USS, their own
    pages) and the sizes of what search reads: the tables and the HNSW indexes."""
    import psutil
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        )
        pids = [row[0] for row in cursor.fetchall()]
        cursor.execute("SHOW shared_buffers")
        shared_buffers = cursor.fetchone()[0]
        cursor.execute(
            "SELECT pg_total_relation_size('catalog_productembedding'), pg_table_size('catalog_productembedding'),"
            " pg_total_relation_size('catalog_product'), pg_total_relation_size('catalog_productimage')"
        )
        embedding_total, embedding_table, product_total, image_total = cursor.fetchone()
    backends = []
    for pid in pids:
        try:
            info = psutil.Process(pid).memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        backends.append({"rss_mb": info.rss / 2**20, "uss_mb": info.uss / 2**20})
    return {
        "shared_buffers": shared_buffers,
        "backends": len(backends),
        "backend_rss_mb_max": round(max((b["rss_mb"] for b in backends), default=0.0), 1),
        "backend_uss_mb_max": round(max((b["uss_mb"] for b in backends), default=0.0), 1),
        "backend_uss_mb_sum": round(sum(b["uss_mb"] for b in backends), 1),
        "embeddings_table_mb": round(embedding_table / 2**20, 1),
        "embeddings_with_indexes_mb": round(embedding_total / 2**20, 1),
        "products_with_indexes_mb": round((product_total + image_total) / 2**20, 1),
    }


def worker_memory(server) -> dict:
    """RSS and USS of the server's processes: gunicorn's master and its web workers (the model's pages,
    loaded before fork, are shared: RSS counts them in each, USS only what a worker has of its own)."""
    import psutil

    processes = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
    measured = []
    for process in processes:
        try:
            info = process.memory_full_info()
            measured.append((process.pid, info.rss / 2**20, info.uss / 2**20, len(process.children())))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    workers = [m for m in measured if m[3] == 0]
    return {
        "workers": len(workers),
        "worker_rss_mb_max": round(max((m[1] for m in workers), default=0.0), 1),
        "worker_uss_mb_max": round(max((m[2] for m in workers), default=0.0), 1),
    }


def api_measure(
    *,
    version,
    database: str,
    texts: list[str],
    rows: list[dict],
    catalogue: Path,
    requests: int,
    seconds: float,
    levels: tuple[int, ...],
    size: int,
) -> dict:
    """GET /api/v1/search/ on `manage.py serve`: one client against the floor (the query's encoding +
    the raw SQL, interleaved request by request), then bench/load.py's closed loop at `levels` clients;
    PostgreSQL's and a web worker's memory after it."""
    import os
    import runpy
    import threading

    from django.db import connection, transaction

    from bench.load import Workload, run_level, start_server, stop_server
    from bench.search_latency import api_get, free_port
    from config.serving import serving_worker_start
    from search.ranking import (
        SearchFilters,
        _set_scan_options,
        fulltext_query_for,
        fulltext_rows,
        fulltext_sql,
        fulltext_words,
        nearest_sql,
        vector_literal,
    )
    from search.selectors import _candidate_count, _encoder

    os.environ["SEARCH_ANALYTICS"] = "0"  # the analytics' cost is bench/analytics_overhead.py's
    # The floor encodes with a web worker's share of the cores, as the server's workers do.
    serving_worker_start(workers=runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))["workers"])
    encoder = _encoder(version)
    page = 24
    # The raw queries the API's ranking needs for a page: its candidates from the text index, at the
    # candidate list (ef_search) the API sets for the recall it keeps.
    candidates = _candidate_count(offset=0, limit=page)
    with transaction.atomic(), connection.cursor() as cursor:
        _set_scan_options(cursor, k=candidates)
        cursor.execute("SELECT current_setting('hnsw.ef_search')::int")
        floor_ef = cursor.fetchone()[0]
    sql, params = nearest_sql(version=version, kind="text", k=candidates, filters=SearchFilters())

    def floor(query: str) -> tuple[float, float, float]:
        started = time.perf_counter()
        vector = encoder.encode_texts([query])[0]
        encoded = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            scan_options(cursor, ef_search=floor_ef, iterative=False)
            cursor.execute(sql, {**params, "q_text": vector_literal(vector)})
            cursor.fetchall()
        searched = time.perf_counter()
        # As hybrid search does: the query's tsqueries, then the ranking with them as constants.
        words = fulltext_query_for(fulltext_words(query))
        if words is not None:
            fulltext_rows(*fulltext_sql(k=candidates, filters=SearchFilters(), query=words))
        done = time.perf_counter()
        return (encoded - started) * 1000, (searched - encoded) * 1000, (done - searched) * 1000

    modes = ("vector", "hybrid")
    log = CACHE / f"serve-{size_label(size)}.log"
    port = free_port()
    server = start_server("serve", port, log)
    base = f"http://127.0.0.1:{port}"
    measured: dict = {
        "api": {mode: [] for mode in modes},
        "took": {mode: [] for mode in modes},
        "stages": {mode: [] for mode in modes},
    }
    encode_ms, ann_ms, fts_ms = [], [], []
    throughput = []
    try:
        for query in texts[:10]:  # warm-up: connections, caches
            for mode in modes:
                api_get(base, query, mode)
            floor(query)
        for index in tqdm(range(requests), desc="API against its floor", unit="request"):
            query = texts[(10 + index) % len(texts)]
            # The first to run a query reads its index pages cold (from the OS cache into PostgreSQL's
            # buffers): each of the three goes first in turn.
            contenders = [*modes, "floor"]
            shift = index % len(contenders)
            for contender in contenders[shift:] + contenders[:shift]:
                if contender == "floor":
                    encode, ann, fts = floor(query)
                    encode_ms.append(encode)
                    ann_ms.append(ann)
                    fts_ms.append(fts)
                    continue
                elapsed, body, stages = api_get(base, query, contender)
                if len(body["results"]) != page:
                    raise RuntimeError(f"short page for {query!r} in {contender}: {len(body['results'])}")
                measured["api"][contender].append(elapsed)
                measured["stages"][contender].append(stages)
                measured["took"][contender].append(body["took_ms"])
        photos = [(catalogue.parent / row["image"]).read_bytes() for row in rows[:40]]
        step = max(size // 500, 1)
        workload = Workload(
            queries=texts, skus=[f"scale-{i:07d}" for i in range(0, size, step)], photos=photos
        )
        peak: dict = {}
        for clients in levels:
            stop = threading.Event()

            def sample(stop: threading.Event = stop) -> None:
                while not stop.wait(1.0):
                    for key, value in postgres_memory(database).items():
                        if isinstance(value, float) and key.startswith("backend"):
                            peak[key] = max(peak.get(key, 0.0), value)
                connection.close()  # this thread's own

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            result = run_level(server="serve", port=port, clients=clients, seconds=seconds, workload=workload)
            stop.set()
            sampler.join()
            throughput.append(
                {
                    "clients": clients,
                    "requests_per_s": round(result.requests / result.seconds, 2),
                    "p50": round(result.percentile(50), 1),
                    "p95": round(result.percentile(95), 1),
                    "p99": round(result.percentile(99), 1),
                    "errors": result.server_errors + sum(result.errors.values()),
                }
            )
            print(json.dumps(throughput[-1]), flush=True)
        memory = {"postgres": {**postgres_memory(database), **{f"peak_{k}": v for k, v in peak.items()}}}
        memory["web"] = worker_memory(server)
    finally:
        stop_server(server)
    floors = {
        "vector": [a + b for a, b in zip(encode_ms, ann_ms, strict=True)],
        "hybrid": [a + b + c for a, b, c in zip(encode_ms, ann_ms, fts_ms, strict=True)],
    }
    latency = {
        mode: {
            "api": percentile_dict(measured["api"][mode]),
            "view": percentile_dict(measured["took"][mode]),
            "floor": percentile_dict(floors[mode]),
            "ratio_p50": round(float(np.median(measured["api"][mode]) / np.median(floors[mode])), 3),
            # The view's own stages (its Server-Timing header), median ms each.
            "stages_p50": {
                name: round(
                    float(np.median([stages.get(name, 0.0) for stages in measured["stages"][mode]])), 2
                )
                for name in sorted({name for stages in measured["stages"][mode] for name in stages})
            },
        }
        for mode in modes
    }
    latency["floor_ef_search"] = floor_ef
    latency["parts"] = {
        "encode": percentile_dict(encode_ms),
        "ann": percentile_dict(ann_ms),
        "fulltext": percentile_dict(fts_ms),
    }
    return {"latency": latency, "throughput": throughput, "memory": memory, "requests": requests}


def storage_measure(*, version, queries: np.ndarray, truth: ExactTopK) -> list[dict]:
    """The text vectors indexed three ways, same rows, same queries: the project's halfvec HNSW, a
    float32 one (`embedding::vector(dim)`), and binary quantisation (`binary_quantize`, Hamming HNSW)
    with the candidates re-ranked by exact halfvec distance. Size, build time, recall@10, latency."""
    from django.db import connection

    from lifecycle.vector_indexes import TABLE, vector_index_name
    from search.ranking import vector_literal

    dim = int(version.embedding_dim)
    where = f"model_version_id = {int(version.pk)} AND kind = 'text'"
    halfvec = f"(embedding::halfvec({dim}))"
    variants = {
        "float32": (f"(embedding::vector({dim}))", "vector_cosine_ops", "<=>", f"::vector({dim})"),
        "binary": (f"(binary_quantize(embedding)::bit({dim}))", "bit_hamming_ops", "<~>", None),
    }
    measured = []
    literals = [vector_literal(query) for query in queries]
    expected = truth.top("none")

    def run(sql: str, ef: int) -> dict:
        latencies, recalls = [], []
        for literal in literals:  # warm
            timed_nearest(sql=sql, params={"q": literal}, ef_search=ef, iterative=False)
        for literal, wanted in zip(literals, expected, strict=True):
            ms, found = timed_nearest(sql=sql, params={"q": literal}, ef_search=ef, iterative=False)
            latencies.append(ms)
            recalls.append(recall_at([product_id - 1 for product_id in found], wanted))
        return {"recall_at_10": round(float(np.mean(recalls)), 4), **percentile_dict(latencies)}

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_size(%s)", [vector_index_name(version_id=version.pk, kind="text")])
        size = cursor.fetchone()[0]
    for ef in (40, 100):
        sql = f"SELECT product_id FROM {TABLE} WHERE {where} ORDER BY {halfvec} <=> %(q)s::halfvec({dim}) LIMIT 10"
        measured.append(
            {
                "index": "halfvec (shipped)",
                "ef_search": ef,
                "index_mb": round(size / 2**20, 1),
                "build_s": None,
                **run(sql, ef),
            }
        )
    for name, (expression, opclass, operator, cast) in tqdm(variants.items(), desc="storage variants"):
        index = f"scale_bench_{name}_hnsw"
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {index}")
            started = time.perf_counter()
            cursor.execute(
                f"CREATE INDEX {index} ON {TABLE} USING hnsw ({expression} {opclass}) WHERE {where}"
            )
            build = time.perf_counter() - started
            cursor.execute("ANALYZE catalog_productembedding")
            cursor.execute("SELECT pg_relation_size(%s)", [index])
            size = cursor.fetchone()[0]
        for ef in (40, 100):
            if cast:
                sql = f"SELECT product_id FROM {TABLE} WHERE {where} ORDER BY {expression} {operator} %(q)s{cast} LIMIT 10"
                label = name
            else:
                # Hamming distance finds ef candidates; exact halfvec distance orders them.
                sql = (
                    f"SELECT product_id FROM (SELECT product_id, embedding FROM {TABLE} WHERE {where}"
                    f" ORDER BY {expression} {operator} binary_quantize(%(q)s::halfvec({dim}))::bit({dim})"
                    f" LIMIT {ef}) candidates ORDER BY {halfvec} <=> %(q)s::halfvec({dim}) LIMIT 10"
                )
                label = f"binary + re-rank of {ef}"
            measured.append(
                {
                    "index": label,
                    "ef_search": ef,
                    "index_mb": round(size / 2**20, 1),
                    "build_s": round(build, 1),
                    **run(sql, ef),
                }
            )
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX {index}")
    return measured


def api_arguments(version, database: str, texts: list[str], rows: list[dict], arguments, size: int) -> dict:
    return {
        "version": version,
        "database": database,
        "texts": texts,
        "rows": rows,
        "catalogue": arguments.catalog,
        "requests": arguments.requests,
        "seconds": arguments.seconds,
        "levels": tuple(arguments.levels),
        "size": size,
    }


def stage(size: int, arguments: argparse.Namespace) -> dict:
    """One size: load (unless loaded with the same vectors), then measure; saves results-<size>.json."""
    import os

    database = size_database(size)
    setup(database=database)
    from catalog.models import Product
    from lifecycle.models import ModelVersion
    from lifecycle.vector_indexes import vector_index_names_existing

    rows = catalogue_rows(arguments.catalog)
    text, photo = base_vectors(rows, arguments.catalog)
    base = {"text": text, "image": photo}
    if arguments.neighbours_only and results_path(size).exists():
        results = json.loads(results_path(size).read_text())
        results["neighbour_distance"] = neighbour_distance_measure(base, size=size, spread=arguments.spread)
        results_path(size).write_text(json.dumps(results, indent=1))
        return results
    load_path = CACHE / f"load-{size_label(size)}.json"
    recipe = {
        "size": size,
        "spread": arguments.spread,
        "noise": NOISE,
        "seed": SEED,
        "skus": len(rows),
        "partners": BLEND_PARTNERS,
    }
    loaded = json.loads(load_path.read_text()) if load_path.exists() else {}
    version = ModelVersion.objects.filter(name=VERSION_NAME, status=ModelVersion.Status.ACTIVE).first()
    if (
        loaded.get("recipe") != recipe
        or version is None
        or Product.objects.count() != size
        or len(vector_index_names_existing(version_id=version.pk)) < 2
    ):
        print(f"Loading {size:,} products into {database}", flush=True)
        load_path.unlink(missing_ok=True)
        loaded = {
            "recipe": recipe,
            "timings": catalogue_load(rows=rows, size=size, base=base, spread=arguments.spread),
        }
        load_path.write_text(json.dumps(loaded, indent=1))
        version = ModelVersion.objects.get(name=VERSION_NAME)
    else:
        print(f"{database} already holds the {size:,} products; measuring", flush=True)
    load_before = os.getloadavg()[0]
    texts, queries = query_set(rows)
    if arguments.api_only and results_path(size).exists():
        results = json.loads(results_path(size).read_text())
        results["machine"]["load_before"] = round(load_before, 2)
        results.update(api_measure(**api_arguments(version, database, texts, rows, arguments, size)))
        results["machine"]["load_after"] = round(os.getloadavg()[0], 2)
        results_path(size).write_text(json.dumps(results, indent=1))
        return results
    picked = filters_pick(rows)
    masks: dict[str, np.ndarray | None] = {"none": None}
    selectivity = {}
    for name, (column, value, _) in picked.items():
        base_mask = np.array([row[column] == value for row in rows])
        masks[name] = base_mask[np.arange(size) % len(rows)]
        selectivity[name] = {"column": column, "value": value, "share": round(float(masks[name].mean()), 4)}
    truth, image_truth = ExactTopK(queries, 10, masks), ExactTopK(queries, 10, {"none": None})
    for kind, exact in (("text", truth), ("image", image_truth)):
        chunks = scaled_chunks(base, size=size, spread=arguments.spread, kind=kind)
        for first, vectors in tqdm(
            chunks, total=-(-size // CHUNK), desc=f"exact search ({kind})", unit="chunk"
        ):
            exact.add(first, vectors)
    results = {
        "size": size,
        "spread": arguments.spread,
        "noise": NOISE,
        "partners": BLEND_PARTNERS,
        "load": loaded["timings"],
        "selectivity": selectivity,
        "neighbour_distance": neighbour_distance_measure(base, size=size, spread=arguments.spread),
        "machine": {"cores": os.cpu_count(), "load_before": round(load_before, 2)},
    }
    results.update(
        recall_measure(version=version, queries=queries, truth=truth, picked=picked, image_truth=image_truth)
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, pg_relation_size(indexname::regclass) FROM pg_indexes"
            " WHERE tablename = 'catalog_productembedding' AND indexname LIKE %s",
            ["%hnsw"],
        )
        results["hnsw_mb"] = {name: round(value / 2**20, 1) for name, value in cursor.fetchall()}
    if size <= arguments.storage_up_to:
        results["storage"] = storage_measure(version=version, queries=queries, truth=truth)
    results.update(api_measure(**api_arguments(version, database, texts, rows, arguments, size)))
    results["machine"]["load_after"] = round(os.getloadavg()[0], 2)
    results_path(size).write_text(json.dumps(results, indent=1))
    return results


PLOTS = ROOT / "bench" / "plots"
CASES = (("text", "none"), ("text", "10%"), ("text", "1%"), ("image", "none"))


def case_label(result: dict, kind: str, name: str) -> str:
    index = "text index" if kind == "text" else "photo index (text queries)"
    if name == "none":
        return index
    chosen = result["selectivity"][name]
    return f"{index}, {chosen['column']} = {chosen['value']} ({100 * chosen['share']:.1f} %)"


def plots_write(results: list[dict]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    PLOTS.mkdir(parents=True, exist_ok=True)
    styles = {"none": "-", "10%": "--", "1%": ":"}
    figure, (recall_axis, latency_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    for result in results:
        for kind, name in CASES[:3]:
            points = [p for p in result["sweep"] if swept(p, kind, name)]
            label = f"{size_label(result['size'])}, {'unfiltered' if name == 'none' else name + ' filter'}"
            efs = [p["ef_search"] for p in points]
            recall_axis.plot(efs, [p["recall_at_10"] for p in points], styles[name], marker="o", label=label)
            latency_axis.plot(efs, [p["p50"] for p in points], styles[name], marker="o", label=label)
    for axis, title in ((recall_axis, "recall@10 of the text index"), (latency_axis, "raw SQL p50 ms")):
        axis.set_xscale("log", base=2)
        axis.set_xticks(EF_VALUES, [str(ef) for ef in EF_VALUES])
        axis.set_xlabel("hnsw.ef_search (iterative scan relaxed_order)")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    recall_axis.axhline(0.95, color="grey", linewidth=0.8)
    recall_axis.axhline(0.9, color="grey", linewidth=0.8, linestyle=":")
    recall_axis.legend(fontsize=7)
    figure.tight_layout()
    recall_png = PLOTS / "scale-recall-ef.png"
    figure.savefig(recall_png, dpi=110)
    plt.close(figure)

    figure, (api_axis, recall_n_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    sizes = [result["size"] for result in results]
    for mode, marker in (("vector", "o"), ("hybrid", "s")):
        for key, style in (("api", "-"), ("floor", ":")):
            for q in ("p50", "p95"):
                values = [result["latency"][mode][key][q] for result in results]
                api_axis.plot(sizes, values, style, marker=marker, label=f"{mode} {key} {q}")
    api_axis.axhline(50, color="grey", linewidth=0.8)
    api_axis.set_title("GET /api/v1/search/ (one client) and its floor, ms")
    for name in ("none", "10%", "1%"):
        values = [
            next(a["recall_at_10"] for a in result["api_ranking"] if a["filter"] == name)
            for result in results
        ]
        recall_n_axis.plot(
            sizes,
            values,
            styles[name],
            marker="o",
            label="API ranking, " + ("unfiltered" if name == "none" else f"{name} filter"),
        )
    recall_n_axis.set_title("recall@10 of the API's ranking (shipped settings)")
    for axis in (api_axis, recall_n_axis):
        axis.set_xscale("log")
        axis.set_xlabel("products")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    size_png = PLOTS / "scale-latency-recall-n.png"
    figure.savefig(size_png, dpi=110)
    plt.close(figure)
    return [recall_png, size_png]


def estimate_next(result: dict, target: int) -> dict:
    """Seconds a size would take, from a measured one: rows and vectors linear, the HNSW build
    n log n (more if the graph outgrows maintenance_work_mem), the measures as measured."""
    factor = target / result["size"]
    load = result["load"]
    build = load["hnsw_build_s"] * factor * np.log(target) / np.log(result["size"])
    copy_s = 2 * target * load["copy_probe"]["seconds"] / load["copy_probe"]["vectors"]
    return {
        "load_s": (load["rows_s"] + load["vectors_s"]) * factor,
        "load_by_copy_s": load["rows_s"] * factor + copy_s,
        "hnsw_build_s": float(build),
    }


def swept(point: dict, kind: str, name: str) -> bool:
    """Whether a measured point is on the ef_search curve of (kind, filter): shipped scan settings."""
    return (point["kind"], point["filter"], point["iterative"], point.get("scan_tuples_factor", 1)) == (
        kind,
        name,
        True,
        1,
    )


def smallest_ef(result: dict, name: str, recall: float) -> dict | None:
    """The sweep's smallest ef_search whose text-index recall@10 under filter `name` reaches `recall`
    with every page full."""
    points = [p for p in result["sweep"] if swept(p, "text", name)]
    return next((p for p in points if p["recall_at_10"] >= recall and p["full_pages"] == 1), None)


def target_rows(results: list[dict]) -> list[list[object]]:
    rows: list[list[object]] = []
    for r in results:
        n = f"{r['size']:,}"
        api = {point["filter"]: point for point in r["api_ranking"]}
        for name, recall in (("none", 0.95), ("1%", 0.9)):
            shipped = api[name]
            met = shipped["recall_at_10"] >= recall and shipped["full_pages"] == 1
            rows.append(
                [
                    n,
                    f"recall@10 >= {recall} ({'unfiltered' if name == 'none' else '1 % filter'}), full pages",
                    f"API ranking as shipped: {shipped['recall_at_10']:.3f}, {100 * shipped['full_pages']:.0f} % full",
                    "yes" if met else "**no**",
                ]
            )
            enough = smallest_ef(r, name, recall)
            rows.append(
                [
                    n,
                    "  smallest ef_search in the sweep that meets it (raw SQL)",
                    "none of them"
                    if enough is None
                    else f"ef {enough['ef_search']}: {enough['recall_at_10']:.3f}, p50 {enough['p50']:.1f} ms",
                    "",
                ]
            )
        latency = r["latency"]["vector"]
        rows.append(
            [
                n,
                "API p50 <= 1.5 x floor and < 50 ms (vector mode)",
                f"{latency['api']['p50']:.1f} ms, {latency['ratio_p50']:.2f} x",
                "yes" if latency["ratio_p50"] <= 1.5 and latency["api"]["p50"] < 50 else "**no**",
            ]
        )
        build = r["load"]["hnsw_build_s"]
        rows.append(
            [
                n,
                "HNSW build <= 30 min (both indexes)",
                f"{build / 60:.1f} min",
                "yes" if build <= 1800 else "**no**",
            ]
        )
    return rows


# The search view's Server-Timing stages (search.selectors), in the order a query runs them.
STAGES = ("understand", "encode", "fulltext", "rank", "facets")


def report(results: list[dict], *, levels: list[int]) -> str:
    from bench.benchmarks_file import markdown_table

    def ms(values: dict) -> str:
        return f"{values['p50']:.1f} / {values['p95']:.1f} / {values['p99']:.1f}"

    load_rows, realism_rows, sweep_rows, off_rows, api_rows, latency_rows, throughput_rows, stage_rows = (
        [] for _ in range(8)
    )
    memory_rows, storage_rows = [], []
    for r in results:
        n = f"{r['size']:,}"
        load = r["load"]
        vectors = 2 * r["size"]
        notices = "; ".join(load["hnsw_notices"]) or "none"
        load_rows.append(
            [
                n,
                f"{load['rows_s']:.1f}",
                f"{load['vectors_s']:.1f} ({vectors / load['vectors_s']:,.0f}/s)",
                f"{load['copy_probe']['vectors'] / load['copy_probe']['seconds']:,.0f}/s",
                f"{load['hnsw_build_s']:.1f}",
                " / ".join(f"{v:.1f}" for _, v in sorted(r["hnsw_mb"].items(), reverse=True)),
                f"{r['memory']['postgres']['embeddings_with_indexes_mb']:.0f}",
                f"{load['maintenance_work_mem']}, {load['max_parallel_maintenance_workers']} workers: {notices}",
            ]
        )
        nn = r["neighbour_distance"]
        measured_up_to = max(int(size) for size in nn["real_trend"]["measured"])
        realism_rows.append(
            [
                n,
                " / ".join(f"{v:.4f}" for v in nn["real_expected"].values())
                + (" (extrapolated)" if r["size"] > measured_up_to else ""),
                " / ".join(f"{nn['scaled'][q]:.4f}" for q in ("p50", "p90")),
            ]
        )
        for kind, name in CASES:
            cells = []
            for point in (p for p in r["sweep"] if swept(p, kind, name)):
                full = "" if point["full_pages"] == 1 else f", {100 * point['full_pages']:.0f} % full"
                cells.append(f"{point['recall_at_10']:.3f} ({point['p50']:.1f} ms{full})")
            sweep_rows.append([n, case_label(r, kind, name), *cells])
        for point in (p for p in r["sweep"] if not swept(p, p["kind"], p["filter"])):
            off_rows.append(
                [
                    n,
                    case_label(r, "text", point["filter"]),
                    "off"
                    if not point["iterative"]
                    else f"relaxed_order, max_scan_tuples x {point.get('scan_tuples_factor', 1)}",
                    point["ef_search"],
                    f"{point['recall_at_10']:.3f}",
                    f"{100 * point['full_pages']:.0f} %",
                    f"{point['p50']:.1f}",
                ]
            )
        for point in r["api_ranking"]:
            api_rows.append(
                [
                    n,
                    case_label(r, "text", point["filter"]),
                    point["candidates"],
                    f"{point['recall_at_10']:.3f}",
                    f"{100 * point['full_pages']:.0f} %",
                    f"{point['p50']:.1f}",
                ]
            )
        for mode in ("vector", "hybrid"):
            latency = r["latency"][mode]
            met = latency["ratio_p50"] <= 1.5 and latency["api"]["p50"] < 50
            latency_rows.append(
                [
                    n,
                    mode,
                    ms(latency["api"]),
                    ms(latency["view"]),
                    ms(latency["floor"]),
                    f"{latency['ratio_p50']:.2f}",
                    "yes" if met else "**no**",
                ]
            )
        for mode in ("vector", "hybrid"):
            stages = r["latency"][mode].get("stages_p50")
            if stages:
                named = sum(value for name, value in stages.items() if name != "total")
                stage_rows.append(
                    [
                        n,
                        mode,
                        *(f"{stages.get(name, 0.0):.1f}" for name in STAGES),
                        f"{stages['total'] - named:.1f}",
                        f"{stages['total']:.1f}",
                        f"{r['latency'][mode]['api']['p50'] - stages['total']:.1f}",
                    ]
                )
        parts = r["latency"]["parts"]
        latency_rows.append(
            [
                n,
                "floor parts",
                f"encode {ms(parts['encode'])}",
                f"ANN {ms(parts['ann'])}",
                f"full text {ms(parts['fulltext'])}",
                "",
                "",
            ]
        )
        for level in r["throughput"]:
            throughput_rows.append(
                [
                    n,
                    level["clients"],
                    f"{level['requests_per_s']:.1f}",
                    f"{level['p50']:.0f}",
                    f"{level['p95']:.0f}",
                    f"{level['p99']:.0f}",
                    level["errors"],
                ]
            )
        pg, web = r["memory"]["postgres"], r["memory"]["web"]
        memory_rows.append(
            [
                n,
                f"{pg['embeddings_with_indexes_mb']:.0f} + {pg['products_with_indexes_mb']:.0f}",
                pg["shared_buffers"],
                f"{pg.get('peak_backend_rss_mb_max', pg['backend_rss_mb_max']):.0f} / "
                f"{pg.get('peak_backend_uss_mb_max', pg['backend_uss_mb_max']):.0f}",
                f"{web['worker_rss_mb_max']:.0f} / {web['worker_uss_mb_max']:.0f} ({web['workers']} processes)",
            ]
        )
        for point in r.get("storage", []):
            build = "" if point["build_s"] is None else f"{point['build_s']:.1f}"
            storage_rows.append(
                [
                    n,
                    point["index"],
                    point["ef_search"],
                    f"{point['index_mb']:.1f}",
                    build,
                    f"{point['recall_at_10']:.3f}",
                    f"{point['p50']:.2f}",
                ]
            )
    largest = results[-1]
    trend = largest["neighbour_distance"]["real_trend"]
    sizes = [r["size"] for r in results]
    lines = [
        "## Search at scale (`bench/scale.py`)",
        "",
        f"Catalogues of {', '.join(f'{size:,}' for size in sizes)} products made from the 9,583 Myntra ones "
        "(copies with unique skus, same attributes): the real products with the default model's real text and "
        "photo vectors, then variants of them, each moved along the directions to its base's "
        f"{largest['partners']} nearest real products by Gaussian weights of deviation {largest['spread']}, plus "
        f"isotropic noise of a norm up to {largest['noise']} (renormalised); each in a database of its own on the "
        "shared PostgreSQL 18 + pgvector 0.8 server. Rows by COPY, vectors by `embeddings_insert` (COPY) "
        "(the embedding pipeline's write), the indexes by `lifecycle.vector_indexes.vector_index_create` (halfvec, "
        'm = 16, ef_construction = 64). 200 queries (100 titles, 100 "gender colour article type" phrases), '
        "recall against exact search over the stored halfvec values. Per-size results: "
        "`var/bench-scale/results-<size>.json`.",
        "",
        "**Load and build**",
        "",
        markdown_table(
            [
                "products",
                "rows COPY s",
                "vectors embeddings_insert s",
                "binary COPY probe (TEMP table: no WAL, no FK checks)",
                "HNSW build s (both)",
                "HNSW MB (text / photo)",
                "embeddings table + indexes MB",
                "maintenance_work_mem: notices",
            ],
            load_rows,
        ),
        "",
        "**Are the perturbed vectors realistic?** Cosine distance to the nearest other product (text vectors, "
        "p50 / p90). The real catalogue's is measured on random subsets of it "
        f"({', '.join(f'{int(size):,}' for size in trend['measured'])} products) and extrapolated beyond its "
        f"size by the power law those follow (slope {trend['slope']['p50']} for p50, {trend['slope']['p90']} "
        "for p90, in log-log): what this shop would look like with more products. The scaled catalogue's is "
        "over 300 products drawn from all of it (`--remeasure --neighbours-only` measures it again).",
        "",
        markdown_table(["products", "real catalogue", "scaled catalogue"], realism_rows),
        "",
        "**recall@10 over `hnsw.ef_search`** (raw `search.ranking.nearest_sql`, LIMIT 10, iterative scan "
        "`relaxed_order`, max_scan_tuples as shipped; cell: recall (p50 ms, share of full pages when not all))",
        "",
        markdown_table(["products", "index, filter", *(f"ef {ef}" for ef in EF_VALUES)], sweep_rows),
        "",
        "Other scan settings under the filters: iterative scan off, and `hnsw.max_scan_tuples` ten times the "
        "shipped `PRODUCT_SEARCH_MAX_SCAN_TUPLES`:",
        "",
        markdown_table(
            ["products", "filter", "iterative scan", "ef_search", "recall@10", "full pages", "p50 ms"],
            off_rows,
        ),
        "",
        "**The API's ranking as shipped** (`search.selectors` text ranking: `candidates` nearest per index, "
        "ef_search = max(candidates, `PRODUCT_SEARCH_HNSW_EF_SEARCH`, `HNSW_EF_SEARCH_PER_MILLION` x millions of "
        "products), exact rescoring; recall@10 of its "
        "first 10, full = a page of 24):",
        "",
        markdown_table(["products", "filter", "candidates", "recall@10", "full pages", "p50 ms"], api_rows),
        "",
        "**GET /api/v1/search/ against its floor** on `manage.py serve` (one client, "
        f"{largest['requests']} requests per mode; floor = the query's encoding + the raw ANN query the API's "
        "ranking needs (its 50 candidates from the text index at the `ef_search` the API sets: "
        + ", ".join(
            f"{r['latency'].get('floor_ef_search', 160)} at {r['size']:,}" for r in results if "latency" in r
        )
        + "), + the raw full-text query in `hybrid`, interleaved request by request, each of the three first in "
        "turn; ms p50 / p95 / p99; "
        "target: p50 <= 1.5 x floor and < 50 ms):",
        "",
        markdown_table(
            ["products", "mode", "API (client)", "in the view", "floor", "API / floor p50", "target"],
            latency_rows,
        ),
        "",
        "Where the view's time goes: its `Server-Timing` stages, median ms each (the medians do not add up "
        "to the total's exactly); `other` is the rest of the view (parameters, the active version, the "
        "page's JSON), `HTTP` the client's time beyond the view (server, middleware, transfer):",
        "",
        markdown_table(
            ["products", "mode", *STAGES, "other", "view total", "HTTP"],
            stage_rows,
        ),
        "",
        f"**Throughput** on `manage.py serve`, bench/load.py's closed loop ({', '.join(map(str, levels))} clients; "
        "60 % text, 20 % photo, 20 % similar):",
        "",
        markdown_table(
            ["products", "clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"], throughput_rows
        ),
        "",
        "**Memory**: PostgreSQL relation sizes (what search reads), its backends for the database "
        "(peak while loaded; RSS counts the shared buffers a backend touched, USS its own), a web worker:",
        "",
        markdown_table(
            [
                "products",
                "embeddings + products MB",
                "shared_buffers",
                "PG backend RSS / USS MB",
                "web worker RSS / USS MB",
            ],
            memory_rows,
        ),
    ]
    if storage_rows:
        lines += [
            "",
            "**halfvec, float32, binary quantisation** (text vectors, unfiltered, same queries):",
            "",
            markdown_table(
                ["products", "index", "ef_search", "index MB", "build s", "recall@10", "p50 ms"], storage_rows
            ),
        ]
    lines += [
        "",
        "**Targets** (issue 14, for 1,000,000 products; smaller sizes for the trend):",
        "",
        markdown_table(["products", "target", "measured", "met"], target_rows(results)),
    ]
    if largest["size"] < 1_000_000:
        estimate = estimate_next(largest, 1_000_000)
        lines += [
            "",
            f"1,000,000 not measured yet; from {largest['size']:,}: load about {estimate['load_s'] / 60:.0f} min "
            f"(at least {estimate['load_by_copy_s'] / 60:.0f} min with the vectors by binary COPY), "
            f"HNSW build of both indexes about {estimate['hnsw_build_s'] / 60:.0f} min (n log n; more once the "
            "graph outgrows maintenance_work_mem).",
        ]
    lines += [
        "",
        "![recall and latency over ef_search](bench/plots/scale-recall-ef.png)",
        "![API latency and recall over catalogue size](bench/plots/scale-latency-recall-n.png)",
        "",
        "Machine: "
        + "; ".join(
            f"{r['size']:,}: {r['machine']['cores']} cores, load {r['machine']['load_before']}"
            f" before, {r['machine'].get('load_after', '?')} after"
            for r in results
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated catalogue sizes")
    parser.add_argument(
        "--spread",
        type=float,
        default=SPREAD,
        help="deviation of a variant's weights along the directions to its base's nearest real products",
    )
    parser.add_argument("--catalog", type=Path, default=CATALOGUE)
    parser.add_argument("--requests", type=int, default=150, help="API requests per mode against the floor")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per throughput level")
    parser.add_argument("--levels", default="1,4,16", help="concurrent clients for the throughput")
    parser.add_argument(
        "--storage-up-to", type=int, default=100_000, help="float32/binary comparison up to this size"
    )
    parser.add_argument("--remeasure", action="store_true", help="measure sizes that have results already")
    parser.add_argument(
        "--api-only",
        action="store_true",
        help="with --remeasure: measure the API, throughput and memory again, keep the other measures",
    )
    parser.add_argument(
        "--neighbours-only",
        action="store_true",
        help="with --remeasure: measure the nearest-neighbour distances again, keep the other measures",
    )
    parser.add_argument("--vectors-only", action="store_true", help="compute the cached base vectors only")
    parser.add_argument("--stage", type=int, help=argparse.SUPPRESS)  # one size, in a process of its own
    parser.add_argument(
        "--no-write", action="store_true", help="print only; leave BENCHMARKS.md and plots alone"
    )
    arguments = parser.parse_args()
    try:
        sizes = sorted({int(size) for size in arguments.sizes.split(",") if size.strip()})
        arguments.levels = [int(level) for level in arguments.levels.split(",")]
    except ValueError as error:
        raise SystemExit(f"--sizes and --levels take comma-separated integers: {error}") from error
    if any(size < 1000 for size in sizes):
        raise SystemExit("--sizes: at least 1,000 products each")
    if arguments.vectors_only:
        setup(database=size_database(sizes[0]), migrate=False)
        base_vectors(catalogue_rows(arguments.catalog), arguments.catalog)
        return
    if arguments.stage:
        stage(arguments.stage, arguments)
        return
    import subprocess

    for size in sizes:
        if results_path(size).exists() and not arguments.remeasure:
            measured_spread = json.loads(results_path(size).read_text()).get("spread")
            if measured_spread != arguments.spread:
                raise SystemExit(
                    f"{size:,} was measured with spread {measured_spread}: --remeasure to redo it"
                )
            print(f"{size:,}: measured already ({results_path(size).relative_to(ROOT)}); --remeasure to redo")
            continue
        command = [sys.executable, __file__, "--stage", str(size), *sys.argv[1:]]
        if subprocess.run(command, check=False).returncode != 0:
            raise SystemExit(f"The {size:,} stage failed; rerun to resume it.")
    results = [json.loads(path.read_text()) for path in CACHE.glob("results-*.json")]
    results.sort(key=lambda result: result["size"])
    if not results:
        raise SystemExit("No size measured yet.")
    body = report(results, levels=arguments.levels)
    print(body)
    if not arguments.no_write:
        from bench.benchmarks_file import write_section

        plots_write(results)
        write_section("scale", body)
        print("Wrote the scale section of BENCHMARKS.md and bench/plots/scale-*.png")


if __name__ == "__main__":
    main()
