"""Everything the plugin serves, for a host shop to mount under one prefix of its own:

    path("product-search/", include("search.shop_urls"))

gives the storefront at /product-search/ and the REST API at /product-search/api/v1/ (docs/integration.md).
This project mounts the same two at the root instead (config/urls.py).
"""

from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("search.api_urls")),
    path("", include("search.urls")),
]
