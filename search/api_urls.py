"""The REST API, included under /api/v1/ by config/urls.py."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from search import api

app_name = "search_api"

urlpatterns = [
    path("search/", api.SearchApi.as_view(), name="search"),
    path("search/image/", api.PhotoSearchApi.as_view(), name="search-image"),
    path("products/<str:sku>/", api.ProductDetailApi.as_view(), name="product-detail"),
    path("products/<str:sku>/similar/", api.SimilarProductsApi.as_view(), name="product-similar"),
    path("suggest/", api.SuggestApi.as_view(), name="suggest"),
    path("events/", api.SearchEventApi.as_view(), name="events"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="search_api:schema"), name="docs"),
]
