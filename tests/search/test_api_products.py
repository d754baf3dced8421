"""GET /api/v1/products/<sku>/ and /similar/."""

from __future__ import annotations

import math

import pytest
from rest_framework.test import APIClient

from catalog.models import Product

pytestmark = pytest.mark.django_db


def test_product_detail(small_catalog):
    response = APIClient().get("/api/v1/products/N3/")
    assert response.status_code == 200
    body = response.json()
    assert body["sku"] == "N3" and body["brand"] == "Mango" and body["article_type"] == "Tops"
    assert body["price"] == 900.0 and body["photo_urls"] == ["http://testserver/media/products/N3-0.jpg"]


def test_unknown_or_inactive_product_is_404(small_catalog):
    assert APIClient().get("/api/v1/products/NOPE/").status_code == 404
    Product.objects.filter(sku="N3").update(is_active=False)
    response = APIClient().get("/api/v1/products/N3/")
    assert response.status_code == 404 and "No product with sku 'N3'" in response.json()["detail"]


def test_similar_products_exclude_the_product_itself(small_catalog):
    response = APIClient().get("/api/v1/products/N1/similar/")
    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    # N1's own vectors are e0 (photo) and e0 (text): the same fusion as a text query for e0, minus N1.
    assert [result["sku"] for result in results] == ["N2", "N3", "R4", "R5"]
    assert results[0]["score"] == pytest.approx(0.6 * math.sqrt(0.5), abs=2e-3)


def test_similar_products_take_filters_and_limit(small_catalog):
    response = APIClient().get("/api/v1/products/N1/similar/", {"colour": "Red", "limit": 1})
    assert [result["sku"] for result in response.json()["results"]] == ["R4"]
    assert APIClient().get("/api/v1/products/NOPE/similar/").status_code == 404
    assert APIClient().get("/api/v1/products/N1/similar/", {"q": "x"}).status_code == 400


def test_similar_products_need_an_active_model(small_catalog):
    from lifecycle.models import ModelVersion

    ModelVersion.objects.update(status=ModelVersion.Status.READY)
    assert APIClient().get("/api/v1/products/N1/similar/").status_code == 503


@pytest.mark.parametrize("path", ["/api/v1/products/a%00b/", "/api/v1/products/a%00b/similar/"])
def test_a_sku_with_a_nul_character_is_a_json_404_not_a_server_error(small_catalog, path):
    response = APIClient().get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "No product with sku 'a\\x00b'."}


def test_similar_products_refuse_a_repeated_limit(small_catalog):
    response = APIClient().get(
        "/api/v1/products/N1/similar/", {"limit": ["1", "2"], "colour": ["Red", "Blue"]}
    )
    assert response.status_code == 400 and list(response.json()) == ["limit"]
