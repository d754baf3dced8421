"""Mounted under a host's prefix, the storefront calls the API under that prefix too."""

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_storefront_at_the_root_calls_the_root_api(client):
    page = client.get("/").content.decode()

    assert 'data-api="/api/v1/"' in page


@override_settings(ROOT_URLCONF="tests.search.shop_mount_urls")
def test_storefront_under_a_prefix_calls_the_api_under_it(client):
    page = client.get("/product-search/").content.decode()

    assert 'data-api="/product-search/api/v1/"' in page
    assert 'class="brand" href="/product-search/"' in page
    assert client.get("/product-search/api/v1/schema/").status_code == 200
