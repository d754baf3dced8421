"""GET /api/v1/suggest/: completions from popular queries, categories, brands, colours and titles, by
word prefixes without case; and every 400."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from search.models import PopularQuery
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/suggest/"


@pytest.fixture
def shop(db):
    ProductFactory(sku="S1", title="Nautica Men Navy Blue Check Shirt", brand="Nautica", colour="Navy Blue")
    ProductFactory(sku="S2", title="Roadster Men Navy Solid Shirt", brand="Roadster", colour="Navy Blue")
    ProductFactory(
        sku="S3", title="Nike Men Running Shoes", brand="Nike", colour="Black", article_type="Sports Shoes"
    )
    ProductFactory(
        sku="S4",
        title="Puma Women Navy Track Pants",
        brand="Puma",
        colour="Navy Blue",
        article_type="Track Pants",
    )
    ProductFactory(sku="S5", title="Naval Gone Shirt", brand="Roadster", is_active=False)
    now = timezone.now()
    PopularQuery.objects.create(normalized_query="navy shirt", searches=12, last_searched_at=now)
    PopularQuery.objects.create(normalized_query="navy check shirt", searches=5, last_searched_at=now)
    PopularQuery.objects.create(normalized_query="navin's order 5512", searches=1, last_searched_at=now)


def suggest(params):
    return APIClient().get(URL, params)


def listed(response):
    assert response.status_code == 200, response.json()
    return [(item["kind"], item["text"]) for item in response.json()["suggestions"]]


def test_a_prefix_suggests_queries_categories_brands_colours_then_titles(shop):
    response = suggest({"q": "nav"})

    assert listed(response) == [
        ("query", "navy shirt"),
        ("query", "navy check shirt"),
        ("colour", "Navy Blue"),
        ("product", "Puma Women Navy Track Pants"),  # the shortest titles first
        ("product", "Roadster Men Navy Solid Shirt"),
        ("product", "Nautica Men Navy Blue Check Shirt"),
    ]
    colour = response.json()["suggestions"][2]
    assert (colour["param"], colour["sku"]) == ("colour", None)
    assert response.json()["suggestions"][3]["sku"] == "S4"


def test_a_query_searched_once_is_never_suggested_to_others(shop):
    assert ("query", "navin's order 5512") not in listed(suggest({"q": "navin"}))


def test_every_typed_word_is_a_word_prefix_in_any_order_and_case(shop):
    assert listed(suggest({"q": "SH NAVY c"})) == [
        ("query", "navy check shirt"),
        ("product", "Nautica Men Navy Blue Check Shirt"),
    ]


def test_brands_and_categories_are_suggested_with_their_filter(shop):
    brands = [item for item in suggest({"q": "nau"}).json()["suggestions"] if item["kind"] == "brand"]
    assert brands == [{"text": "Nautica", "kind": "brand", "param": "brand", "sku": None}]
    categories = [
        item for item in suggest({"q": "sports"}).json()["suggestions"] if item["kind"] == "category"
    ]
    assert categories == [{"text": "Sports Shoes", "kind": "category", "param": "article_type", "sku": None}]


def test_titles_match_unstemmed_word_prefixes(shop):
    # "runn" is no prefix of the English stem "run": titles are matched on their words as written.
    assert ("product", "Nike Men Running Shoes") in listed(suggest({"q": "runn"}))


def test_one_letter_suggests_no_titles_yet(shop):
    kinds = {kind for kind, _ in listed(suggest({"q": "n"}))}
    assert kinds == {"query", "brand", "colour"}
    assert "product" in {kind for kind, _ in listed(suggest({"q": "na"}))}


def test_limit_and_nothing_to_match(shop):
    assert len(suggest({"q": "n", "limit": 2}).json()["suggestions"]) == 2
    assert listed(suggest({"q": "zzzq"})) == []
    assert listed(suggest({"q": "!!"})) == []  # no word typed yet


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 101}, "q"),
        ({"q": "a\x00b"}, "q"),
        ({"q": "nav", "limit": 0}, "limit"),
        ({"q": "nav", "limit": 21}, "limit"),
        ({"q": "nav", "limit": "many"}, "limit"),
        ({"q": "nav", "colour": "Red"}, "colour"),
        ({"q": ["nav", "red"]}, "q"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(shop, params, field):
    response = suggest(params)
    assert response.status_code == 400
    assert field in response.json()


def test_the_schema_documents_suggest_and_events():
    schema = APIClient().get("/api/v1/schema/", {"format": "json"}).json()
    assert schema["paths"]["/api/v1/suggest/"]["get"]["operationId"] == "suggest"
    assert "202" in schema["paths"]["/api/v1/events/"]["post"]["responses"]
    assert "search_id" in schema["components"]["schemas"]["SearchPage"]["properties"]
