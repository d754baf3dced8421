"""Learning from clicks: the queries shoppers clicked a product from, as training texts for a retrain.

A (query, product) pair counts when text searches for the query (lowercased, single-spaced) led to
clicks or add-to-carts on the product in at least CLICK_TRAINING_MIN_CLICKS distinct searches: one
shopper's curiosity does not teach the model. The retrain samples these texts beside the product's own
(lifecycle.signals.training_texts_requested); bench/click_learning.py measures what they do.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from search.conf import search_settings
from search.models import SearchEvent, SearchLog


def clicked_queries(*, skus: list[str], min_clicks: int | None = None) -> dict[str, list[str]]:
    """Per sku among `skus`, the queries its clicks came from at least `min_clicks` times (searches
    counted once each), the most clicked first."""
    min_clicks = int(search_settings.CLICK_TRAINING_MIN_CLICKS if min_clicks is None else min_clicks)
    wanted = set(skus)
    pairs = (
        SearchEvent.objects.filter(search__kind=SearchLog.Kind.TEXT)
        .exclude(search__normalized_query="")
        .values("sku", "search__normalized_query")
        .annotate(searches=Count("search", distinct=True))
        .filter(searches__gte=min_clicks)
        .order_by("-searches", "search__normalized_query")
    )
    texts: dict[str, list[str]] = {}
    for pair in pairs.iterator():
        if pair["sku"] in wanted:
            texts.setdefault(pair["sku"], []).append(pair["search__normalized_query"])
    return texts


def training_texts_for_retrain(sender: Any, *, skus: list[str], **kwargs: Any) -> dict[str, list[str]]:
    """lifecycle.signals.training_texts_requested's receiver (sent by `retrain --clicks`)."""
    return clicked_queries(skus=skus)
