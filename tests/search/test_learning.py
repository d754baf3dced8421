"""Learning from clicks: the queries shoppers clicked a product from become its training texts."""

from __future__ import annotations

import pytest
from django.utils import timezone

from lifecycle.retraining import retrain_extra_texts
from search.learning import clicked_queries
from search.models import SearchEvent, SearchLog

pytestmark = pytest.mark.django_db


def _clicked(query: str, sku: str, *, searches: int, clicks_each: int = 1, kind: str = SearchLog.Kind.TEXT):
    now = timezone.now()
    for _ in range(searches):
        log = SearchLog.objects.create(
            created_at=now,
            kind=kind,
            query=query,
            normalized_query=" ".join(query.lower().split()),
            mode="hybrid",
            result_count=10,
            latency_ms=1.0,
        )
        for _ in range(clicks_each):
            SearchEvent.objects.create(
                search=log, kind=SearchEvent.Kind.CLICK, sku=sku, position=2, created_at=now
            )


def test_a_query_counts_once_it_led_to_clicks_in_enough_searches(settings):
    settings.PRODUCT_SEARCH_CLICK_TRAINING_MIN_CLICKS = 3
    _clicked("Summer Kurta", "K1", searches=3)
    _clicked("festive kurta", "K1", searches=5)
    _clicked("red kurta", "K1", searches=1, clicks_each=6)  # one shopper clicking again and again
    _clicked("K2", "K1", searches=4, kind=SearchLog.Kind.SIMILAR)  # not a text search
    _clicked("blue jeans", "J1", searches=3)

    assert clicked_queries(skus=["K1", "X"]) == {"K1": ["festive kurta", "summer kurta"]}
    assert clicked_queries(skus=["K1", "J1"], min_clicks=1) == {
        "K1": ["festive kurta", "summer kurta", "red kurta"],
        "J1": ["blue jeans"],
    }


def test_a_retrain_asks_search_for_the_clicked_queries(settings):
    settings.PRODUCT_SEARCH_CLICK_TRAINING_MIN_CLICKS = 2
    _clicked("summer kurta", "K1", searches=2)

    assert retrain_extra_texts(skus=["K1", "K2"]) == {"K1": ["summer kurta"]}
