"""Merchandising rules on the whole ranking, before the page is cut: pins, boosts, buries, hides, their
scopes (query, category) and dates. Through the API, on the small catalogue whose vector ranking for
the query is known: N1 > N2 > N3 > R4 > R5."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from search.merchandising import merchandising_rule_save
from search.models import MerchandisingRule
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/search/"
QUERY = "navy shirt"


def skus(params=None, *, url=URL, **extra_params):
    query = {"q": QUERY, "mode": "vector", **(params or {}), **extra_params} if url == URL else params or {}
    response = APIClient().get(url, query)
    assert response.status_code == 200, response.json()
    return [result["sku"] for result in response.json()["results"]]


def rule(**fields) -> MerchandisingRule:
    return merchandising_rule_save(rule=MerchandisingRule(name=fields.pop("name", "a rule"), **fields))


def test_without_rules_the_ranking_is_the_models(small_catalog):
    assert skus() == ["N1", "N2", "N3", "R4", "R5"]


def test_a_hidden_product_never_appears(small_catalog):
    rule(action="hide", product=small_catalog["N1"])

    assert "N1" not in skus()
    assert skus(limit=2) == ["N2", "N3"]
    assert "N1" not in skus({}, url="/api/v1/products/N2/similar/")


def test_a_pin_takes_its_position_for_its_query_only_whatever_the_case(small_catalog):
    rule(action="pin", product=small_catalog["R5"], position=1, query="Navy  SHIRT")

    assert skus() == ["R5", "N1", "N2", "N3", "R4"]
    assert skus(q="red dress") == ["N1", "N2", "N3", "R4", "R5"]


def test_a_pin_on_the_second_page_appears_there_and_not_on_the_first(small_catalog):
    rule(action="pin", product=small_catalog["R5"], position=3, query=QUERY)

    assert skus(limit=2) == ["N1", "N2"]
    assert skus(limit=2, offset=2) == ["R5", "N3"]


def test_a_pinned_product_that_was_no_candidate_is_fetched_but_must_pass_the_filters(small_catalog):
    unranked = ProductFactory(sku="NEW1", colour="Navy Blue")  # no vectors: never a candidate
    rule(action="pin", product=unranked, position=2, query=QUERY)

    assert skus()[:3] == ["N1", "NEW1", "N2"]
    assert "NEW1" not in skus(colour="Red")


def test_an_unlimited_boost_moves_matching_products_before_the_rest_across_pages(small_catalog):
    rule(action="boost", field="brand", value="mango")  # N3 and R4, any case

    assert skus(limit=2) == ["N3", "R4"]
    assert skus(limit=2, offset=2) == ["N1", "N2"]


def test_a_boost_by_some_positions_and_a_bury(small_catalog):
    rule(action="boost", field="article_type", value="Tops", shift=1)  # N3 and R4 up one place
    assert skus() == ["N1", "N3", "N2", "R4", "R5"]

    rule(action="bury", field="colour", value="Navy Blue")  # N1 and N2 to the end
    assert skus() == ["N3", "R4", "R5", "N1", "N2"]


def test_a_boost_by_attribute(small_catalog):
    small_catalog["R5"].attributes = {"Pattern": "Checked"}
    small_catalog["R5"].save()
    rule(action="boost", field="attribute", attribute_name="pattern", value="checked")

    assert skus()[0] == "R5"


def test_category_rules_apply_to_searches_filtered_to_that_category(small_catalog):
    rule(action="pin", product=small_catalog["R4"], position=1, article_type="Tops")

    assert skus(article_type="Tops") == ["R4", "N3"]
    assert skus() == ["N1", "N2", "N3", "R4", "R5"]


def test_rules_apply_between_their_start_and_end(small_catalog):
    now = timezone.now()
    rule(action="hide", product=small_catalog["N1"], starts_at=now + timedelta(days=1))
    rule(
        action="hide",
        product=small_catalog["N2"],
        ends_at=now - timedelta(minutes=1),
        starts_at=now - timedelta(days=2),
    )
    rule(action="hide", product=small_catalog["N3"], is_enabled=False)
    rule(
        action="hide",
        product=small_catalog["R4"],
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=1),
    )

    assert skus() == ["N1", "N2", "N3", "R5"]


def test_photo_search_applies_the_rules_too(small_catalog, tmp_path):
    from tests.conftest import make_photo_bytes

    rule(action="hide", product=small_catalog["N1"])
    response = APIClient().post("/api/v1/search/image/", {"photo": _upload(make_photo_bytes())})
    assert response.status_code == 200
    assert "N1" not in [result["sku"] for result in response.json()["results"]]


def _upload(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("q.jpg", data, content_type="image/jpeg")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"action": "pin", "position": 1, "query": "x"}, "product"),
        ({"action": "pin", "query": "x", "with_product": True}, "position"),
        ({"action": "pin", "position": 1, "with_product": True}, "query"),
        ({"action": "boost", "value": "Mango"}, "field"),
        ({"action": "bury", "field": "brand"}, "value"),
        ({"action": "boost", "field": "attribute", "value": "Checked"}, "attribute_name"),
    ],
)
def test_an_incomplete_rule_is_refused_with_what_is_missing(small_catalog, fields, field):
    if fields.pop("with_product", False):
        fields["product"] = small_catalog["N1"]
    with pytest.raises(ValidationError) as refused:
        rule(**fields)
    assert field in refused.value.message_dict
    assert not MerchandisingRule.objects.exists()


def test_a_rule_saved_in_the_admin_applies_to_the_next_search(small_catalog, admin_client):
    assert skus()[0] == "N1"  # the rules are read (none) and kept by this process

    response = admin_client.post(
        reverse("admin:product_search_merchandisingrule_add"),
        {
            "name": "R5 first for navy shirt",
            "action": "pin",
            "is_enabled": "on",
            "query": QUERY,
            "product": small_catalog["R5"].pk,
            "position": "1",
        },
    )

    assert response.status_code == 302, response.content.decode()[-3000:]
    assert skus()[0] == "R5"
