"""The embedding table's per-version HNSW indexes are what a cosine ORDER BY ... LIMIT uses."""

import numpy as np
import pytest
from django.db import connection

from lifecycle.models import ProductEmbedding
from lifecycle.vector_indexes import (
    vector_expression,
    vector_index_create,
    vector_index_drop,
    vector_index_name,
    vector_index_names_existing,
)
from tests.factories import ModelVersionFactory, ProductFactory

# Index builds run outside the writing transaction, as they do in production.
pytestmark = pytest.mark.django_db(transaction=True)

DIM = 64


def _fill(version, products, rng):
    vectors = rng.standard_normal((len(products), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ProductEmbedding.objects.bulk_create(
        ProductEmbedding(model_version=version, product=product, kind="text", embedding=vector)
        for product, vector in zip(products, vectors, strict=True)
    )
    return vectors


def _ranking_sql(version_id: int, query: np.ndarray) -> tuple[str, list]:
    literal = "[" + ",".join(f"{value:.6f}" for value in query) + "]"
    sql = (
        f"SELECT product_id, {vector_expression(dim=DIM)} <=> %s::halfvec({DIM}) AS distance "
        f"FROM catalog_productembedding WHERE model_version_id = {version_id} AND kind = 'text' "
        f"ORDER BY {vector_expression(dim=DIM)} <=> %s::halfvec({DIM}) LIMIT 10"
    )
    return sql, [literal, literal]


def test_cosine_ranking_uses_the_active_versions_hnsw_index():
    rng = np.random.default_rng(0)
    products = ProductFactory.create_batch(1500)
    serving, building = ModelVersionFactory(embedding_dim=DIM), ModelVersionFactory(embedding_dim=DIM)
    serving_vectors = _fill(serving, products, rng)
    _fill(building, products, rng)
    vector_index_create(version=serving)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_productembedding")

    query = serving_vectors[42]
    sql, params = _ranking_sql(serving.pk, query)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(sql, params)
        rows = cursor.fetchall()

    assert f"Index Scan using {vector_index_name(version_id=serving.pk, kind='text')}" in plan
    # The nearest neighbour of a stored vector is its own product, at distance ~0 (halfvec rounding).
    assert rows[0][0] == products[42].pk and rows[0][1] < 1e-3
    exact = np.argsort(-(serving_vectors @ query))[:10]
    assert [row[0] for row in rows] == [products[index].pk for index in exact]


def test_indexes_are_per_version_and_dropped_with_it():
    version = ModelVersionFactory(embedding_dim=DIM)
    names = vector_index_create(version=version)
    assert vector_index_names_existing(version_id=version.pk) == sorted(names)
    vector_index_create(version=version)  # idempotent
    vector_index_drop(version_id=version.pk)
    assert vector_index_names_existing(version_id=version.pk) == []


def test_a_version_without_a_dimension_cannot_be_indexed():
    with pytest.raises(ValueError, match="has no embedding_dim"):
        vector_index_create(version=ModelVersionFactory(embedding_dim=None))


def test_a_build_gets_memory_for_its_graph_and_leaves_the_session_as_it_was(settings):
    from lifecycle.vector_indexes import vector_index_build_memory_mb

    # Sized to the vectors: pgvector's 64 MB default held about 34,000 graph elements of 587 dimensions.
    assert vector_index_build_memory_mb(vectors=0, dim=587) == 64
    assert 64 < vector_index_build_memory_mb(vectors=34_000, dim=587) < 128
    assert vector_index_build_memory_mb(vectors=1_000_000, dim=587) == 2620
    settings.PRODUCT_SEARCH_HNSW_BUILD_MEMORY_MB = 1024
    assert vector_index_build_memory_mb(vectors=1_000_000, dim=587) == 1024
    with connection.cursor() as cursor:
        cursor.execute("SHOW maintenance_work_mem")
        before = cursor.fetchone()[0]
    vector_index_create(version=ModelVersionFactory(embedding_dim=DIM))
    with connection.cursor() as cursor:
        cursor.execute("SHOW maintenance_work_mem")
        assert cursor.fetchone()[0] == before
