"""The per-version HNSW indexes over `catalog_productembedding`.

All versions share one table; each (version, kind) gets a partial HNSW index on
`embedding::halfvec(dim)` WHERE model_version_id = N AND kind = K. A query that filters on the same
version and kind, and orders by the same expression, is answered from that small index alone, so a
version being embedded never slows the one that serves, and dropping a version drops its indexes.
The index is built once the version's vectors are in (a bulk build is faster than growing it row by
row); rows added later (new products) are inserted into it by PostgreSQL as usual.
"""

from __future__ import annotations

from django.db import connection

from lifecycle.conf import lifecycle_settings
from lifecycle.models import ModelVersion, ProductEmbedding

TABLE = ProductEmbedding._meta.db_table
KINDS = tuple(ProductEmbedding.Kind.values)


def vector_index_name(*, version_id: int, kind: str) -> str:
    return f"{TABLE}_v{int(version_id)}_{kind}_hnsw"


def vector_expression(*, dim: int) -> str:
    """The indexed expression; a ranking query must order by exactly this to use the index."""
    return f"(embedding::halfvec({int(dim)}))"


# Memory a graph element takes in an index build beyond its halfvec value (2 bytes a dimension): pgvector
# reported its 64 MB default full after 33,857 elements of 587 dimensions, about 810 bytes more each.
GRAPH_ELEMENT_OVERHEAD_BYTES = 1024
BUILD_MEMORY_MARGIN = 1.25
MIN_BUILD_MEMORY_MB = 64


def vector_index_build_memory_mb(*, vectors: int, dim: int) -> int:
    """maintenance_work_mem (MB) for building a graph of `vectors` halfvecs of `dim` dimensions in memory,
    at most HNSW_BUILD_MEMORY_MB."""
    needed = vectors * (2 * dim + GRAPH_ELEMENT_OVERHEAD_BYTES) * BUILD_MEMORY_MARGIN / 2**20
    return int(min(max(needed, MIN_BUILD_MEMORY_MB), lifecycle_settings.HNSW_BUILD_MEMORY_MB))


def vector_index_create(*, version: ModelVersion, concurrently: bool = False) -> list[str]:
    """Create the version's HNSW indexes if missing; returns their names.

    `concurrently` builds without blocking writes (it must run outside a transaction).
    """
    if not version.embedding_dim:
        raise ValueError(f"Model version {version.name} has no embedding_dim yet")
    names = []
    for kind in KINDS:
        name = vector_index_name(version_id=version.pk, kind=kind)
        if kind not in ProductEmbedding.Kind.values:  # pragma: no cover - guarded by KINDS
            raise ValueError(kind)
        sql = (
            f"CREATE INDEX {'CONCURRENTLY ' if concurrently else ''}IF NOT EXISTS {name} "
            f"ON {TABLE} USING hnsw ({vector_expression(dim=version.embedding_dim)} halfvec_cosine_ops) "
            f"WITH (m = {int(lifecycle_settings.HNSW_M)}, "
            f"ef_construction = {int(lifecycle_settings.HNSW_EF_CONSTRUCTION)}) "
            f"WHERE model_version_id = {int(version.pk)} AND kind = '{kind}'"
        )
        vectors = ProductEmbedding.objects.filter(model_version=version, kind=kind).count()
        memory_mb = vector_index_build_memory_mb(vectors=vectors, dim=version.embedding_dim)
        with connection.cursor() as cursor:
            if connection.in_atomic_block:  # the setting ends with the transaction
                cursor.execute(f"SET LOCAL maintenance_work_mem = '{memory_mb}MB'")
                cursor.execute(sql)
            else:
                cursor.execute("SHOW maintenance_work_mem")
                previous = cursor.fetchone()[0]
                cursor.execute(f"SET maintenance_work_mem = '{memory_mb}MB'")
                try:
                    cursor.execute(sql)
                finally:
                    cursor.execute(f"SET maintenance_work_mem = '{previous}'")
        names.append(name)
    return names


def vector_index_drop(*, version_id: int) -> None:
    with connection.cursor() as cursor:
        for kind in KINDS:
            cursor.execute(f"DROP INDEX IF EXISTS {vector_index_name(version_id=version_id, kind=kind)}")


def vector_index_names_existing(*, version_id: int) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname = ANY(%s)",
            [TABLE, [vector_index_name(version_id=version_id, kind=kind) for kind in KINDS]],
        )
        return sorted(row[0] for row in cursor.fetchall())
