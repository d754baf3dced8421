"""The ranking SQL uses the active version's HNSW indexes, and filters still fill the page: exactly
over the filtered products when they are few, through the HNSW index's iterative scan when many."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from catalog.models import Product, ProductImage
from lifecycle.models import ModelVersion, ProductEmbedding
from lifecycle.vector_indexes import vector_index_name
from search.ranking import SearchFilters, nearest_sql, ranking_sql, vector_literal
from tests.factories import ModelVersionFactory, ProductFactory
from tests.search.conftest import DIM, index_build

pytestmark = pytest.mark.django_db

PRODUCTS = 1200
RARE_SHARE = 20  # one product in 20 (5%) is for girls


@pytest.fixture
def large_catalog(query_vector, settings):
    """1,200 products with random photo and text vectors; every 20th is for girls (5%)."""
    rng = np.random.default_rng(7)
    version = ModelVersionFactory(status=ModelVersion.Status.ACTIVE, embedding_dim=DIM)
    products = Product.objects.bulk_create(
        ProductFactory.build(gender="Girls" if i % RARE_SHARE == 0 else "Men") for i in range(PRODUCTS)
    )
    girls = products[::RARE_SHARE]
    photos = ProductImage.objects.bulk_create(
        ProductImage(
            product=product, image=f"products/{product.sku}.jpg", width=1, height=1, content_sha256="0"
        )
        for product in products
    )
    vectors = {}
    for kind in ("image", "text"):
        values = rng.standard_normal((PRODUCTS, DIM)).astype(np.float32)
        vectors[kind] = values / np.linalg.norm(values, axis=1, keepdims=True)
    rows = [
        ProductEmbedding(
            model_version=version, product=product, image=photo, kind="image", embedding=vectors["image"][i]
        )
        for i, (product, photo) in enumerate(zip(products, photos, strict=True))
    ]
    rows += [
        ProductEmbedding(model_version=version, product=product, kind="text", embedding=vectors["text"][i])
        for i, product in enumerate(products)
    ]
    ProductEmbedding.objects.bulk_create(rows, batch_size=2000)
    index_build(version)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_productembedding")
        cursor.execute("ANALYZE catalog_product")
    settings.PRODUCT_SEARCH_IMAGE_WEIGHT = 0.5
    query_vector.vector = vectors["image"][3]
    return version, products, girls, vectors


def _explain(sql: str, params: dict) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_explain_shows_the_active_versions_hnsw_indexes(large_catalog):
    version, _, _, vectors = large_catalog
    query = vector_literal(vectors["image"][3])

    sql, params = ranking_sql(
        version=version, kinds=["image", "text"], image_weight=0.5, k=100, filters=SearchFilters()
    )
    plan = _explain(sql, {**params, "q_image": query, "q_text": query})

    for kind in ("image", "text"):
        assert f"Index Scan using {vector_index_name(version_id=version.pk, kind=kind)}" in plan, plan
    assert "Seq Scan on catalog_productembedding" not in plan, plan


def test_explain_of_a_broad_filter_still_uses_the_index(large_catalog):
    """A filter that keeps most products reads the HNSW index (iteratively), not every product."""
    version, _, _, vectors = large_catalog
    filters = SearchFilters(values={"gender": ("Men",)})
    sql, params = nearest_sql(version=version, kind="image", k=100, filters=filters)
    plan = _explain(sql, {**params, "q_image": vector_literal(vectors["image"][3])})
    assert f"Index Scan using {vector_index_name(version_id=version.pk, kind='image')}" in plan, plan


def _exact_page(products, girls, vectors, limit: int) -> list[str]:
    query = vectors["image"][3]
    index = {product.pk: i for i, product in enumerate(products)}
    fused = {
        product.sku: 0.5 * vectors["image"][index[product.pk]] @ query
        + 0.5 * vectors["text"][index[product.pk]] @ query
        for product in girls
    }
    return sorted(fused, key=lambda sku: -fused[sku])[:limit]


def _exact(sql: str) -> bool:
    """Whether a vector query reads every filtered product (its order is not the index's)."""
    return re.search(r"\) \+ 0\n\s*LIMIT", sql) is not None


def _girls_page(limit: int) -> tuple[list[str], list[bool]]:
    """The result skus of a search for girls, and which of the vector queries it ran (the ranking's,
    then the gender facet's without that filter) were exact."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = APIClient().get("/api/v1/search/", {"q": "dress", "gender": "Girls", "limit": limit})
    assert response.status_code == 200, response.json()
    vector_sql = [query["sql"] for query in captured.captured_queries if "<=>" in query["sql"]]
    return [result["sku"] for result in response.json()["results"]], [_exact(sql) for sql in vector_sql]


def test_a_filter_leaving_few_products_ranks_them_exactly(large_catalog):
    """60 girls' products, under EXACT_SEARCH_ALWAYS_UP_TO: every one is scored, none missed."""
    version, products, girls, vectors = large_catalog

    skus, exact = _girls_page(24)

    assert skus == _exact_page(products, girls, vectors, 24)
    assert exact == [True, False]  # the gender facet counts without the gender filter: all products


@pytest.mark.parametrize(("max_share", "exact"), [(0.1, True), (0.04, False)])
def test_past_a_few_products_the_exact_ranking_is_for_filters_keeping_a_small_share(
    large_catalog, settings, max_share, exact
):
    """60 of 1,200 products is 5 %: exact under a share of 10 %, the HNSW index under 4 %."""
    settings.PRODUCT_SEARCH_EXACT_SEARCH_ALWAYS_UP_TO = 10
    settings.PRODUCT_SEARCH_EXACT_SEARCH_MAX_SHARE = max_share

    skus, exact_queries = _girls_page(24)

    assert len(skus) == 24 and exact_queries[0] is exact
    settings.PRODUCT_SEARCH_EXACT_SEARCH_MAX_MATCHES = 59  # one fewer than the girls' products
    assert _girls_page(24)[1][0] is False


@pytest.fixture
def hnsw_plans_preferred():
    """On 1,200 products the planner itself prefers to sort the 60 girls' products over an HNSW scan;
    a large catalogue would not. Sorting off for the session makes it scan the index."""
    with connection.cursor() as cursor:
        cursor.execute("SET enable_sort = off")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET enable_sort")


def test_a_filter_matching_5_percent_of_products_still_returns_a_full_page(
    large_catalog, settings, hnsw_plans_preferred
):
    """Without the exact ranking, the HNSW index's iterative scan fills the page."""
    version, products, girls, vectors = large_catalog
    settings.PRODUCT_SEARCH_EXACT_SEARCH_ALWAYS_UP_TO = settings.PRODUCT_SEARCH_EXACT_SEARCH_MAX_MATCHES = 0
    limit = 24

    skus, exact = _girls_page(limit)

    assert len(skus) == limit
    assert set(skus) <= {product.sku for product in girls}
    assert exact == [False, False]
    # The same page as exact search over the girls' products, but for the odd approximate neighbour.
    assert len(set(skus) & set(_exact_page(products, girls, vectors, limit))) >= limit - 1


def test_an_hnsw_scan_that_comes_back_short_is_ranked_again_exactly(
    large_catalog, settings, hnsw_plans_preferred
):
    """An iterative scan stopped by MAX_SCAN_TUPLES before it found a page falls back to exact."""
    version, products, girls, vectors = large_catalog
    settings.PRODUCT_SEARCH_EXACT_SEARCH_ALWAYS_UP_TO = settings.PRODUCT_SEARCH_EXACT_SEARCH_MAX_MATCHES = 0
    settings.PRODUCT_SEARCH_MAX_SCAN_TUPLES = 50  # about 2 girls' products among 50 index tuples

    skus, exact = _girls_page(24)

    assert exact == [False, True, False]
    assert skus == _exact_page(products, girls, vectors, 24)


def test_explain_of_the_exact_ranking_reads_no_hnsw_index(large_catalog):
    version, _, _, vectors = large_catalog
    filters = SearchFilters(values={"gender": ("Girls",)})
    sql, params = nearest_sql(version=version, kind="image", k=24, filters=filters, exact=True)
    plan = _explain(sql, {**params, "q_image": vector_literal(vectors["image"][3])})
    assert (
        "hnsw" not in plan.lower() and vector_index_name(version_id=version.pk, kind="image") not in plan
    ), plan


def test_without_iterative_scan_the_same_filter_would_under_fill(large_catalog):
    """Why the iterative scan matters: a plain HNSW scan returns ef_search rows, then filters them."""
    version, _, _, vectors = large_catalog
    filters = SearchFilters(values={"gender": ("Girls",)})
    sql, params = nearest_sql(version=version, kind="image", k=24, filters=filters)
    params["q_image"] = vector_literal(vectors["image"][3])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = off")
        cursor.execute("SET LOCAL hnsw.ef_search = 40")
        cursor.execute("SET LOCAL enable_sort = off")  # the order must come from the HNSW index
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    assert "hnsw" in plan
    assert len(rows) < 24


def test_a_narrow_price_range_is_ranked_exactly_through_its_index(large_catalog):
    """A price range is a filter like the others: the 60 products priced within it are counted
    through the price index and ranked exactly."""
    from decimal import Decimal

    from django.test.utils import CaptureQueriesContext

    from search.ranking import rank_by_vectors

    version, products, girls, vectors = large_catalog
    Product.objects.update(price=Decimal("500"))
    Product.objects.filter(pk__in=[product.pk for product in girls]).update(price=Decimal("20"))
    filters = SearchFilters(min_price=Decimal("10"), max_price=Decimal("30"))

    with CaptureQueriesContext(connection) as captured:
        ranking = rank_by_vectors(
            version=version,
            vectors={"image": vectors["image"][3], "text": vectors["image"][3]},
            image_weight=0.5,
            k=24,
            filters=filters,
        )

    assert [_exact(query["sql"]) for query in captured.captured_queries if "<=>" in query["sql"]] == [True]
    assert [candidate.attributes["sku"] for candidate in ranking[:24]] == _exact_page(
        products, girls, vectors, 24
    )
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        where, params = filters.where_sql()
        cursor.execute(f"EXPLAIN SELECT 1 FROM catalog_product p WHERE {where}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    assert "price" in plan and "Index" in plan, plan
