"""The storefront page: a template and a small script that call the search API (no external assets)."""

from typing import Any

from django.urls import reverse
from django.views.generic import TemplateView

from search.conf import search_settings
from search.filters import FILTER_COLUMNS


class StorefrontView(TemplateView):
    template_name = "search/storefront.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # Wherever the host mounted the API (/api/v1/ here, /product-search/api/v1/ in a shop): the
        # script appends search/, search/image/ and products/<sku>/ to it.
        context["api_root"] = reverse("search_api:search").removesuffix("search/")
        context["api_key"] = search_settings.STOREFRONT_API_KEY
        context["filter_names"] = ",".join(FILTER_COLUMNS)
        context["max_query_length"] = search_settings.MAX_QUERY_LENGTH
        return context
