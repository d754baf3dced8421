"""API keys, throttling, CORS, the OpenAPI schema and the self-hosted Swagger UI."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.cache import cache
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_with_api_keys_configured_a_key_is_required(small_catalog, settings):
    settings.PRODUCT_SEARCH_API_KEYS = ["storefront-1", "storefront-2"]
    client = APIClient()
    response = client.get("/api/v1/search/", {"q": "x"})
    assert response.status_code == 401 and "X-Api-Key" in response.json()["detail"]
    assert client.get("/api/v1/search/", {"q": "x"}, HTTP_X_API_KEY="wrong").status_code == 401
    assert client.get("/api/v1/search/", {"q": "x"}, HTTP_X_API_KEY="storefront-2").status_code == 200


def test_without_keys_the_api_is_open(small_catalog):
    assert APIClient().get("/api/v1/search/", {"q": "x"}).status_code == 200


def test_anonymous_clients_are_throttled_at_the_configured_rate(small_catalog, settings):
    settings.PRODUCT_SEARCH_THROTTLE_ANON_RATE = "2/min"
    cache.clear()
    client = APIClient()
    assert [client.get("/api/v1/search/", {"q": "x"}).status_code for _ in range(3)] == [200, 200, 429]


def test_each_api_key_has_its_own_throttle(small_catalog, settings):
    settings.PRODUCT_SEARCH_API_KEYS = ["a", "b"]
    settings.PRODUCT_SEARCH_THROTTLE_API_KEY_RATE = "1/min"
    cache.clear()
    client = APIClient()
    assert client.get("/api/v1/search/", {"q": "x"}, HTTP_X_API_KEY="a").status_code == 200
    assert client.get("/api/v1/search/", {"q": "x"}, HTTP_X_API_KEY="a").status_code == 429
    assert client.get("/api/v1/search/", {"q": "x"}, HTTP_X_API_KEY="b").status_code == 200


def test_cors_allows_the_configured_storefront_origins(small_catalog, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example"]
    client = APIClient()
    allowed = client.get("/api/v1/search/", {"q": "x"}, HTTP_ORIGIN="https://shop.example")
    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example"
    other = client.get("/api/v1/search/", {"q": "x"}, HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other
    preflight = client.options(
        "/api/v1/search/",
        HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-api-key",
    )
    assert "x-api-key" in preflight["Access-Control-Allow-Headers"]


def test_schema_is_valid_openapi_3_with_every_endpoint():
    from drf_spectacular.validation import validate_schema

    response = APIClient().get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/v1/search/",
        "/api/v1/search/image/",
        "/api/v1/products/{sku}/",
        "/api/v1/products/{sku}/similar/",
        "/api/v1/suggest/",
        "/api/v1/events/",
    }
    search_parameters = {
        parameter["name"] for parameter in schema["paths"]["/api/v1/search/"]["get"]["parameters"]
    }
    assert {"q", "limit", "offset", "mode", "colour", "gender", "min_price", "max_price"} <= search_parameters
    assert "multipart/form-data" in schema["paths"]["/api/v1/search/image/"]["post"]["requestBody"]["content"]


def test_swagger_ui_is_served_from_the_project_with_no_external_url():
    response = APIClient().get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert not re.search(r"(?:https?:)?//(?!localhost|testserver)[a-z0-9.-]+\.[a-z]{2,}", html), html
    local_assets = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
    assert local_assets, html
    for asset in local_assets:
        assert finders.find(asset.split("?")[0]), asset


def _statuses(client: APIClient, count: int, **headers) -> list[int]:
    return [client.get("/api/v1/search/", {"q": "x"}, **headers).status_code for _ in range(count)]


def test_a_forged_forwarded_for_header_does_not_escape_the_throttle(small_catalog, settings):
    settings.PRODUCT_SEARCH_THROTTLE_ANON_RATE = "2/min"
    cache.clear()
    client = APIClient()

    statuses = [
        client.get("/api/v1/search/", {"q": "x"}, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code
        for n in range(3)
    ]

    assert statuses == [200, 200, 429]


def test_behind_a_trusted_proxy_each_client_address_is_counted_apart(small_catalog, settings):
    settings.PRODUCT_SEARCH_THROTTLE_ANON_RATE = "1/min"
    settings.TRUSTED_PROXY_COUNT = 1
    cache.clear()
    client = APIClient()
    # The proxy appends the address it saw; whatever the client sent before it is not trusted.
    first = {"HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7"}
    second = {"HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.8"}

    assert _statuses(client, 2, **first) == [200, 429]
    assert _statuses(client, 1, **second) == [200]


def test_throttling_lets_searches_through_when_its_redis_is_away(small_catalog, settings):
    settings.PRODUCT_SEARCH_THROTTLE_ANON_RATE = "1/min"
    # A real Redis URL where nothing listens: the counts cannot be read or written.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }

    assert _statuses(APIClient(), 3) == [200, 200, 200]


def _search_parameter(schema: dict, name: str) -> dict:
    parameters = schema["paths"]["/api/v1/search/"]["get"]["parameters"]
    return next(parameter for parameter in parameters if parameter["name"] == name)["schema"]


def test_the_schema_documents_the_limits_the_api_enforces(settings):
    schema = APIClient().get("/api/v1/schema/", {"format": "json"}).json()
    assert _search_parameter(schema, "limit")["minimum"] == 1
    assert _search_parameter(schema, "limit")["maximum"] == 100
    assert _search_parameter(schema, "min_price")["minimum"] == 0
    assert _search_parameter(schema, "max_price")["minimum"] == 0
    similar = schema["paths"]["/api/v1/products/{sku}/similar/"]["get"]["parameters"]
    assert next(p for p in similar if p["name"] == "limit")["schema"]["maximum"] == 100

    # The maximum is the host's setting, read when the schema is made.
    settings.PRODUCT_SEARCH_MAX_LIMIT = 30
    schema = APIClient().get("/api/v1/schema/", {"format": "json"}).json()
    assert _search_parameter(schema, "limit")["maximum"] == 30
