"""Facets over the whole matching set (hybrid full text, filter-only browse) or a stated candidate set
(vector queries, and matching sets over the cap), each facet under every filter but its own.

The catalogue: 60 "linen" products (the query's word is in their titles only) that the query vector
ranks below 30 "wool" products, so the matching set is larger than the candidate count and the
vector candidates are mostly products that do not match: counting over the ranking's best products
(the old behaviour) gives other numbers than counting every match. Expected counts are computed here
in Python from the products as created, not by the code under test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from search.filters import FACETS
from search.ranking import SearchFilters
from tests.search.conftest import DIM, add_product, index_build

pytestmark = pytest.mark.django_db

URL = "/api/v1/search/"
LINEN = 60
WOOL = 30
CANDIDATES = 10
COLOURS = ("Navy Blue", "Red", "Black", "White")
BRANDS = ("Roadster", "Mango", "Puma")
GENDERS = ("Men", "Women")
TYPES = ("Shirts", "Tops", "Trousers", "Kurtas", "Jackets")


@dataclass(frozen=True)
class Made:
    """A product as the test created it: what the expected counts are computed from."""

    pk: int
    sku: str
    linen: bool
    rank: int  # its place in the query vector's ranking (0 nearest)
    price: Decimal
    article_type: str
    colour: str
    brand: str
    gender: str


def _text_vector(rank: int) -> np.ndarray:
    """Cosine to the query e0 falls strictly with `rank`, so the nearest products are known exactly."""
    angle = 0.01 + rank * 0.015
    vector = np.zeros(DIM, dtype=np.float32)
    vector[0], vector[1] = np.cos(angle), np.sin(angle)
    return vector


@pytest.fixture
def linen_catalog(active_version, query_vector, settings) -> list[Made]:
    settings.PRODUCT_SEARCH_IMAGE_WEIGHT = 0.0  # texts only: the ranking is the text vectors'
    settings.PRODUCT_SEARCH_FACET_CANDIDATES = CANDIDATES
    made = []
    # The wool products are the query vector's nearest; the linen ones follow.
    for rank in range(WOOL + LINEN):
        linen = rank >= WOOL
        index = rank - WOOL if linen else rank
        fields = {
            "article_type": TYPES[index % 5],
            "colour": COLOURS[index % 4],
            "brand": BRANDS[index % 3],
            "gender": GENDERS[index % 2],
            "price": Decimal(100 + 10 * (index % 7)),
        }
        sku = f"{'LIN' if linen else 'WOO'}{index:03d}"
        title = f"{'Linen' if linen else 'Wool'} piece {index}"
        product = add_product(
            active_version, sku=sku, image=None, text=_text_vector(rank), title=title, **fields
        )
        made.append(Made(pk=product.pk, sku=sku, linen=linen, rank=rank, **fields))
    index_build(active_version)
    return made


def _passes(product: Made, filters: dict[str, Sequence[str]], min_price: Decimal | None) -> bool:
    if min_price is not None and product.price < min_price:
        return False
    return all(getattr(product, column) in values for column, values in filters.items())


def expected_facets(
    products: Sequence[Made], filters: dict[str, Sequence[str]], min_price: Decimal | None = None
) -> dict[str, list[dict]]:
    """Each facet counted over `products` under every filter but its own (the disjunctive rule)."""
    facets = {}
    for name, column in FACETS.items():
        others = {key: values for key, values in filters.items() if key != column}
        counts = Counter(getattr(p, column) for p in products if _passes(p, others, min_price))
        facets[name] = [
            {"value": value, "count": count, "param": column}
            for value, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        ]
    return facets


def nearest(products: Sequence[Made], filters: dict[str, Sequence[str]], n: int = CANDIDATES) -> list[Made]:
    return sorted((p for p in products if _passes(p, filters, None)), key=lambda p: p.rank)[:n]


def expected_candidate_facets(products: Sequence[Made], filters: dict[str, Sequence[str]]) -> dict:
    """Each facet over the CANDIDATES nearest products under every filter but its own."""
    facets = {}
    for name, column in FACETS.items():
        pool = nearest(products, {key: values for key, values in filters.items() if key != column})
        counts = Counter(getattr(p, column) for p in pool)
        facets[name] = [
            {"value": value, "count": count, "param": column}
            for value, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        ]
    return facets


def search(params: dict) -> dict:
    response = APIClient().get(URL, {"correct_spelling": "false", **params})
    assert response.status_code == 200, response.json()
    return response.json()


def all_matches(size: int) -> dict:
    return {"kind": "all_matches", "size": size, "reason": None, "matches_more_than": None}


def candidates(size: int, reason: str, more_than: int | None = None) -> dict:
    return {"kind": "candidates", "size": size, "reason": reason, "matches_more_than": more_than}


def test_hybrid_facets_count_every_full_text_match_not_only_the_best_ranked(linen_catalog):
    body = search({"q": "linen", "mode": "hybrid"})

    linen = [p for p in linen_catalog if p.linen]
    assert body["facets_basis"] == all_matches(LINEN)
    assert body["facets"] == expected_facets(linen, {})
    # More products than any ranking here holds (k = 50 per index): every match was counted.
    assert sum(value["count"] for value in body["facets"]["colour"]) == LINEN > 50


def test_each_facet_counts_under_every_filter_but_its_own(linen_catalog):
    filters = {"colour": ["Red", "Black"], "brand": ["Mango"]}
    body = search({"q": "linen", "mode": "hybrid", **filters, "min_price": "120"})

    linen = [p for p in linen_catalog if p.linen]
    expected = expected_facets(linen, filters, Decimal(120))
    assert body["facets"] == expected
    # Choosing Red and Black leaves the other colours' counts (Mango, from 120) to choose from...
    assert {value["value"] for value in body["facets"]["colour"]} == set(COLOURS)
    # ...while the other facets, and the size, count only what passes every filter.
    size = sum(1 for p in linen if _passes(p, filters, Decimal(120)))
    assert sum(value["count"] for value in body["facets"]["gender"]) == size
    assert body["facets_basis"] == all_matches(size)
    assert sorted(result["sku"] for result in body["results"] if result["sku"].startswith("LIN")) == sorted(
        p.sku for p in linen if _passes(p, filters, Decimal(120))
    )


def test_facets_count_under_the_filters_the_results_were_found_with(linen_catalog):
    body = search({"q": "linen", "mode": "hybrid", "master_category": "Nothing"})

    # No product is in that master category: the search gives the filter up (no dead end), and the
    # facets count under the filters its results were found with; `relaxed` says which were dropped.
    assert body["relaxed"][0]["param"] == "master_category"
    assert body["facets_basis"] == all_matches(LINEN)


def test_vector_queries_count_over_the_nearest_candidates_and_say_so(linen_catalog):
    filters = {"colour": ["Red"], "brand": ["Mango"]}
    body = search({"q": "linen", "mode": "vector", **filters})

    assert body["facets_basis"] == candidates(len(nearest(linen_catalog, filters)), "vector_query")
    assert body["facets"] == expected_candidate_facets(linen_catalog, filters)
    # Disjunctive there too: the colour facet's candidates are not filtered to red, nor the brand's to Mango.
    assert len(body["facets"]["colour"]) > 1 and len(body["facets"]["brand"]) > 1


def test_over_the_cap_hybrid_counts_over_the_candidates_and_says_so(linen_catalog, settings):
    settings.PRODUCT_SEARCH_FACET_MAX_MATCHES = LINEN
    assert search({"q": "linen", "mode": "hybrid"})["facets_basis"] == all_matches(LINEN)

    settings.PRODUCT_SEARCH_FACET_MAX_MATCHES = LINEN - 1
    body = search({"q": "linen", "mode": "hybrid"})

    assert body["facets_basis"] == candidates(CANDIDATES, "too_many_matches", LINEN - 1)
    # The candidates are the query vector's nearest: here all wool.
    assert body["facets"] == expected_candidate_facets(linen_catalog, {})


def _facet_counts_run(params: dict) -> tuple[dict, bool]:
    """The search's body, and whether it ran the facet count (the GROUPING SETS query)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        body = search(params)
    return body, any("GROUPING SETS" in query["sql"] for query in captured.captured_queries)


def test_when_the_ranking_already_read_more_matches_than_the_cap_no_count_runs(linen_catalog, settings):
    """The full-text ranking reads up to FULLTEXT_MAX_MATCHES + 1 matches: 15 red linen products are
    more than a cap of 10, so the count, which would read 11 only to give up, is not run."""
    settings.PRODUCT_SEARCH_FACET_MAX_MATCHES = 10
    body, counted = _facet_counts_run({"q": "linen", "mode": "hybrid", "colour": "Red"})

    assert body["facets_basis"] == candidates(CANDIDATES, "too_many_matches", 10) and not counted

    # Reading at most 8, the ranking cannot tell: the count runs, and gives up past 10 as before.
    settings.PRODUCT_SEARCH_FULLTEXT_MAX_MATCHES = 8
    body, counted = _facet_counts_run({"q": "linen", "mode": "hybrid", "colour": "Red"})

    assert body["facets_basis"] == candidates(CANDIDATES, "too_many_matches", 10) and counted


def test_without_filters_the_catalogues_word_counts_tell_there_are_too_many(linen_catalog, settings):
    """60 products have "linen" in their titles (the spelling vocabulary counts them): more than a cap
    of 40, whatever the ranking read."""
    settings.PRODUCT_SEARCH_FACET_MAX_MATCHES = 40
    settings.PRODUCT_SEARCH_FULLTEXT_MAX_MATCHES = 30
    body, counted = _facet_counts_run({"q": "linen", "mode": "hybrid"})

    assert body["facets_basis"] == candidates(CANDIDATES, "too_many_matches", 40) and not counted
    assert body["facets"] == expected_candidate_facets(linen_catalog, {})

    settings.PRODUCT_SEARCH_FACET_MAX_MATCHES = 60
    body, counted = _facet_counts_run({"q": "linen", "mode": "hybrid"})

    assert body["facets_basis"] == all_matches(LINEN) and counted


def test_stop_words_say_nothing_of_the_matches(linen_catalog):
    """Full-text search drops "with" and "the": however many titles use them, they match nothing."""
    from catalog.services import product_create
    from search.spelling import vocabulary_build

    for index in range(70):
        product_create(sku=f"W{index}", title=f"Sack with the pockets {index}")

    vocabulary = vocabulary_build()

    assert vocabulary.frequencies["with"] == 70 and {"with", "the"} <= vocabulary.unsearchable
    assert vocabulary.products_with_any_of(["With", "the", "linen"]) == LINEN
    assert vocabulary.products_with_any_of(["piece"]) == WOOL + LINEN
    assert vocabulary.products_with_any_of(["velvet"]) == 0


def test_the_cap_counts_the_widest_set_a_facet_needs(linen_catalog, settings):
    # Red linen: 15 products; linen with the colour filter left off (the colour facet's set): 60.
    settings.PRODUCT_SEARCH_FACET_MAX_MATCHES = 30
    body = search({"q": "linen", "mode": "hybrid", "colour": "Red"})

    assert body["facets_basis"] == candidates(CANDIDATES, "too_many_matches", 30)


def test_a_hybrid_query_whose_words_match_nothing_counts_over_the_candidates(linen_catalog):
    body = search({"q": "velvet", "mode": "hybrid"})

    assert body["relaxed"] == [{"step": "words", "param": None, "value": None}]
    assert body["facets_basis"] == candidates(CANDIDATES, "no_word_matches")
    assert body["facets"] == expected_candidate_facets(linen_catalog, {})


def test_similar_products_count_over_candidates(linen_catalog):
    response = APIClient().get(f"/api/v1/products/{linen_catalog[0].sku}/similar/")

    assert response.status_code == 200, response.json()
    assert response.json()["facets_basis"] == candidates(CANDIDATES, "vector_query")


def test_photo_search_counts_over_candidates_each_facet_without_its_own_filter(small_catalog):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.conftest import make_photo_bytes

    photo = SimpleUploadedFile("query.jpg", make_photo_bytes(), content_type="image/jpeg")
    response = APIClient().post(
        "/api/v1/search/image/", {"photo": photo, "colour": "Red"}, format="multipart"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert [result["sku"] for result in body["results"]] == ["R4", "R5"]
    assert body["facets_basis"] == candidates(2, "vector_query")
    assert {value["value"]: value["count"] for value in body["facets"]["colour"]} == {
        "Navy Blue": 2,
        "Red": 2,
        "Blue": 1,
    }
    assert {value["value"]: value["count"] for value in body["facets"]["category"]} == {
        "Tops": 1,
        "Shirts": 1,
    }


def test_hidden_products_are_not_counted(linen_catalog):
    from search.merchandising import merchandising_rule_save
    from search.models import MerchandisingRule

    hidden = next(p for p in linen_catalog if p.linen and p.colour == "Red")
    merchandising_rule_save(
        rule=MerchandisingRule(name="hide one", action=MerchandisingRule.Action.HIDE, product_id=hidden.pk)
    )
    body = search({"q": "linen", "mode": "hybrid"})

    assert body["facets_basis"] == all_matches(LINEN - 1)
    shown = [p for p in linen_catalog if p.linen and p.pk != hidden.pk]
    assert body["facets"] == expected_facets(shown, {})


def test_a_filter_only_browse_counts_every_product_under_the_filters(linen_catalog, settings):
    from search.selectors import search_facets_by_filters

    filters = {"colour": ("Red",), "article_type": ("Shirts", "Tops")}
    counted = search_facets_by_filters(filters=SearchFilters(values=filters))

    assert counted.facets == expected_facets(linen_catalog, filters)
    size = sum(1 for p in linen_catalog if _passes(p, filters, None))
    assert (counted.basis.kind, counted.basis.size, counted.basis.reason) == ("all_matches", size, None)

    # Over the cap nothing ranks a browse: the newest products under the filters are counted.
    settings.PRODUCT_SEARCH_FACET_MAX_MATCHES = 20
    capped = search_facets_by_filters(filters=SearchFilters(values=filters))
    assert capped.basis.kind == "candidates" and capped.basis.reason == "too_many_matches"
    assert capped.basis.matches_more_than == 20
    # The colour facet: the newest products of those types, whatever their colour.
    of_the_types = [
        p for p in sorted(linen_catalog, key=lambda p: -p.pk) if p.article_type in ("Shirts", "Tops")
    ]
    assert len(of_the_types) > CANDIDATES
    newest_colours = Counter(p.colour for p in of_the_types[:CANDIDATES])
    assert {value["value"]: value["count"] for value in capped.facets["colour"]} == newest_colours


def test_the_count_is_one_query_that_reads_at_most_the_cap(linen_catalog, settings):
    settings.PRODUCT_SEARCH_FACET_MAX_MATCHES = 25
    with CaptureQueriesContext(connection) as captured:
        search({"q": "linen", "mode": "hybrid", "colour": "Red"})

    counts = [query["sql"] for query in captured.captured_queries if "GROUPING SETS" in query["sql"]]
    assert len(counts) == 1 and "LIMIT 26" in counts[0]


def test_evaluations_can_leave_the_facets_out(linen_catalog):
    from search.selectors import search_by_text

    with CaptureQueriesContext(connection) as captured:
        page = search_by_text(query="linen", filters=SearchFilters(), limit=10, mode="hybrid", facets=False)

    assert page.facets == {} and page.facets_basis is None and len(page.hits) == 10
    assert not [query for query in captured.captured_queries if "GROUPING SETS" in query["sql"]]


def test_the_renamed_facet_setting_is_flagged_when_a_shop_still_sets_it(settings):
    from search.checks import renamed_settings_check

    assert renamed_settings_check(None) == []
    settings.PRODUCT_SEARCH_FACET_POOL = 80
    (warning,) = renamed_settings_check(None)
    assert warning.id == "product_search.W001" and "PRODUCT_SEARCH_FACET_CANDIDATES" in warning.msg
