"""Synonyms edited in the admin: a query holding one term finds products that say another, both ways."""

from __future__ import annotations

import pytest

from search.models import SynonymGroup
from search.ranking import SearchFilters, rank_by_fulltext
from search.synonyms import SynonymIndex, query_expand_synonyms
from tests.search.conftest import add_product, basis, index_build
from tests.search.test_api_search import get

INDEX = SynonymIndex.from_groups([["tee", "t-shirt", "tshirt"], ["hoodie", "hooded sweatshirt"]])


def test_a_query_word_stands_for_its_group_and_a_phrase_counts_as_one_word():
    expansion = query_expand_synonyms("Navy tee with hooded sweatshirt", index=INDEX)

    assert expansion.alternatives == [
        ["Navy"],
        ["tee", "t-shirt", "tshirt"],
        ["with"],
        ["hooded sweatshirt", "hoodie"],
    ]
    assert expansion.vector_text == "Navy tee with hooded sweatshirt"  # nothing known of the catalogue


def test_the_vector_reads_the_term_the_catalogue_uses_in_place_of_one_it_never_uses():
    catalogue = {"navy": 40, "tshirt": 25, "t": 3, "shirt": 60}

    assert query_expand_synonyms("navy tee", index=INDEX, catalogue_words=catalogue).vector_text == (
        "navy tshirt"
    )
    # A term the catalogue uses is kept.
    catalogue["tee"] = 1
    assert query_expand_synonyms("navy tee", index=INDEX, catalogue_words=catalogue).vector_text == "navy tee"


@pytest.fixture
def tees(active_version, query_vector):
    SynonymGroup.objects.all().delete()  # the defaults the migration adds
    tee = add_product(active_version, sku="TEE", image=None, text=basis(0), title="Cotton Tee")
    t_shirt = add_product(active_version, sku="TSHIRT", image=None, text=basis(1), title="Graphic T-Shirt")
    add_product(active_version, sku="JEANS", image=None, text=basis(2), title="Slim Jeans")
    index_build(active_version)
    return tee, t_shirt


def _fulltext_skus(query: str) -> set[str]:
    expansion = query_expand_synonyms(query)
    ranking = rank_by_fulltext(alternatives=expansion.alternatives, k=10, filters=SearchFilters())
    return {candidate.attributes["sku"] for candidate in ranking}


def test_without_synonyms_each_word_finds_only_itself(tees):
    assert _fulltext_skus("tee") == {"TEE"}
    assert _fulltext_skus("t-shirt") == {"TSHIRT"}


def test_a_synonym_group_applies_both_ways_in_full_text(tees):
    SynonymGroup.objects.create(terms="tee, t-shirt")

    assert _fulltext_skus("tee") == {"TEE", "TSHIRT"}
    assert _fulltext_skus("t-shirt") == {"TEE", "TSHIRT"}


def test_a_group_edited_in_the_admin_changes_the_next_search(tees, admin_client):
    response = admin_client.post(
        "/admin/product_search/synonymgroup/add/", {"terms": " Tee ,T-Shirt, tee ", "is_active": "on"}
    )
    assert response.status_code == 302
    assert SynonymGroup.objects.get().terms == "tee, t-shirt"

    body = get({"q": "tee", "mode": "hybrid"}).json()
    assert {result["sku"] for result in body["results"][:2]} == {"TEE", "TSHIRT"}


def test_a_group_needs_two_different_terms(admin_client):
    response = admin_client.post(
        "/admin/product_search/synonymgroup/add/", {"terms": "tee, Tee", "is_active": "on"}
    )

    assert response.status_code == 200
    assert "at least two different terms" in response.content.decode()
