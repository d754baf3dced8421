"""A host shop's URLconf: the plugin mounted under a prefix of the shop's choosing."""

from django.urls import include, path

urlpatterns = [path("product-search/", include("search.shop_urls"))]
