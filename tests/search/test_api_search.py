"""GET /api/v1/search/: ranking, fusion, filters, facets, pagination and every 400."""

from __future__ import annotations

import math

import pytest
from rest_framework.test import APIClient

from lifecycle.models import ModelVersion
from tests.search.conftest import basis, unit

pytestmark = pytest.mark.django_db

URL = "/api/v1/search/"
FUSED_N2 = 0.6 * math.sqrt(0.5)
FUSED_N3 = 0.4 * math.sqrt(0.5)


def get(params, **headers):
    """These tests pin the vector ranking unless they name a mode (the default is hybrid)."""
    return APIClient().get(URL, {"mode": "vector", **params}, **headers)


def skus(response):
    return [result["sku"] for result in response.json()["results"]]


def test_text_query_ranks_by_photo_and_text_cosine_fused_with_the_weight(small_catalog):
    response = get({"q": "navy shirt"})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert skus(response) == ["N1", "N2", "N3", "R4", "R5"]
    scores = [result["score"] for result in body["results"]]
    assert scores == pytest.approx([1.0, FUSED_N2, FUSED_N3, 0.0, 0.0], abs=2e-3)
    first = body["results"][0]
    assert first["title"].startswith("Roadster Men Navy Blue Check Shirt")
    assert first["category"] == "Shirts" and first["colour"] == "Navy Blue" and first["price"] == 500.0
    assert first["photo_url"] == "http://testserver/media/products/N1-0.jpg"
    assert body["model_version"] == {
        "id": small_catalog["N1"].embeddings.first().model_version_id,
        "name": "chosen-vectors",
    }
    assert body["mode"] == "vector" and body["took_ms"] > 0 and body["next"] is None


def test_photo_weight_setting_changes_the_fusion(small_catalog, settings):
    settings.PRODUCT_SEARCH_IMAGE_WEIGHT = 0.2  # text now counts more: N3 overtakes N2
    assert skus(get({"q": "navy shirt"}))[:3] == ["N1", "N3", "N2"]


def test_the_active_versions_tuned_settings_apply_unless_the_host_sets_them(small_catalog, settings):
    ModelVersion.objects.filter(status="active").update(search_settings={"IMAGE_WEIGHT": 0.2})
    del settings.PRODUCT_SEARCH_IMAGE_WEIGHT  # the host leaves it to the version
    assert skus(get({"q": "navy shirt"}))[:3] == ["N1", "N3", "N2"]
    settings.PRODUCT_SEARCH_IMAGE_WEIGHT = 0.6  # the host's own setting wins
    assert skus(get({"q": "navy shirt"}))[:3] == ["N1", "N2", "N3"]


def test_a_product_with_several_photos_appears_once_scored_by_its_best_photo(
    active_version, query_vector, settings
):
    from tests.search.conftest import add_product, index_build, unit

    settings.PRODUCT_SEARCH_IMAGE_WEIGHT = 1.0
    add_product(active_version, sku="MULTI", image=[basis(2), basis(0), unit(1, 1)], text=basis(3))
    add_product(active_version, sku="ONE", image=unit(1, 1), text=basis(3))
    index_build(active_version)

    response = get({"q": "anything"})
    assert skus(response) == ["MULTI", "ONE"]
    assert response.json()["results"][0]["score"] == pytest.approx(1.0, abs=2e-3)


def test_filters_and_a_repeated_filter_means_or(small_catalog):
    assert skus(get({"q": "x", "colour": "Navy Blue"})) == ["N1", "N2"]
    assert skus(get({"q": "x", "colour": ["Navy Blue", "Red"]})) == ["N1", "N2", "R4", "R5"]
    assert skus(get({"q": "x", "colour": ["Blue", "Red"], "gender": "Women"})) == ["N3", "R4"]
    assert skus(get({"q": "x", "article_type": "Tops", "brand": "Mango"})) == ["N3", "R4"]


def test_price_range_is_inclusive_and_skips_unpriced_products(small_catalog):
    assert skus(get({"q": "x", "min_price": "500", "max_price": "1500"})) == ["N1", "N2", "N3"]
    assert skus(get({"q": "x", "max_price": "499.99"})) == ["R4"]


def test_facets_count_the_matching_products(small_catalog):
    body = get({"q": "x", "gender": "Men"}).json()
    facets = body["facets"]
    assert facets["colour"] == [
        {"value": "Navy Blue", "count": 2, "param": "colour"},
        {"value": "Red", "count": 1, "param": "colour"},
    ]
    assert facets["category"] == [{"value": "Shirts", "count": 3, "param": "article_type"}]
    assert facets["brand"] == [{"value": "Roadster", "count": 3, "param": "brand"}]
    # The gender facet counts under every filter but its own, so the other gender stays choosable.
    assert facets["gender"] == [
        {"value": "Men", "count": 3, "param": "gender"},
        {"value": "Women", "count": 2, "param": "gender"},
    ]
    assert body["facets_basis"] == {
        "kind": "candidates",
        "size": 3,
        "reason": "vector_query",
        "matches_more_than": None,
    }


def test_limit_and_offset_page_through_the_ranking(small_catalog):
    first = get({"q": "x", "limit": 2}).json()
    assert [result["sku"] for result in first["results"]] == ["N1", "N2"]
    assert first["next"] == "http://testserver/api/v1/search/?mode=vector&q=x&limit=2&offset=2"
    second = APIClient().get(first["next"]).json()
    assert [result["sku"] for result in second["results"]] == ["N3", "R4"]
    last = get({"q": "x", "limit": 2, "offset": 4}).json()
    assert [result["sku"] for result in last["results"]] == ["R5"] and last["next"] is None


def test_hybrid_mode_fuses_full_text_ranks_by_reciprocal_rank_fusion(small_catalog):
    # Vector ranking: N1 N2 N3 R4 R5. Full text "mango": N3 and R4 (brand, weight B) only.
    response = get({"q": "mango", "mode": "hybrid"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["mode"] == "hybrid"
    # RRF k=60: N3 = 1/63 + 1/61, R4 = 1/64 + 1/62 (ties on full text broken by id), N1 = 1/61, N2 = 1/62.
    assert skus(response) == ["N3", "R4", "N1", "N2", "R5"]
    assert body["results"][0]["score"] == pytest.approx(1 / 63 + 1 / 61, abs=1e-6)
    stages = dict(item.split(";dur=") for item in response["Server-Timing"].split(", "))
    assert set(stages) == {"understand", "encode", "fulltext", "rank", "facets", "total"}
    assert float(stages["total"]) >= float(stages["fulltext"]) + float(stages["rank"]) > 0


def test_default_mode_comes_from_the_setting(small_catalog, settings):
    assert APIClient().get(URL, {"q": "mango"}).json()["mode"] == "hybrid"
    settings.PRODUCT_SEARCH_DEFAULT_MODE = "vector"
    assert APIClient().get(URL, {"q": "mango"}).json()["mode"] == "vector"


@pytest.mark.parametrize(
    "params, field, message",
    [
        ({}, "q", "Give a search query in `q`"),
        ({"q": ""}, "q", "The search query is empty"),
        ({"q": "   "}, "q", "The search query is empty"),
        ({"q": "x" * 513}, "q", "no more than 512 characters"),
        ({"q": "x", "limit": "0"}, "limit", "greater than or equal to 1"),
        ({"q": "x", "limit": "101"}, "limit", "less than or equal to 100"),
        ({"q": "x", "limit": "ten"}, "limit", "valid integer"),
        ({"q": "x", "offset": "-1"}, "offset", "greater than or equal to 0"),
        ({"q": "x", "mode": "magic"}, "mode", "not a valid choice"),
        ({"q": "x", "min_price": "cheap"}, "min_price", "valid number"),
        ({"q": "x", "offset": "500"}, "offset", "less than or equal to 499"),
        ({"q": "x", "colr": "Navy"}, "colr", "Unknown parameter. Allowed parameters: article_type, brand"),
    ],
)
def test_bad_parameters_are_400_with_field_messages(small_catalog, params, field, message):
    response = get(params)
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])


@pytest.mark.parametrize(
    "name, values",
    [
        ("q", ["shirt", "jeans"]),
        ("limit", ["1", "2"]),
        ("mode", ["vector", "hybrid"]),
        ("offset", ["0", "0"]),
        ("min_price", ["1", "2"]),
        ("max_price", ["100", "200", "300"]),
    ],
)
def test_a_one_value_parameter_given_twice_is_400_naming_it(small_catalog, name, values):
    params = {"q": "x", "mode": "vector", name: values}
    response = APIClient().get(URL, params)
    assert response.status_code == 400, response.json()
    assert list(response.json()) == [name]
    assert response.json()[name][0].startswith(f"`{name}` was given {len(values)} times; give it once.")
    assert "gender, master_category, sub_category, article_type, colour, brand" in response.json()[name][0]


def test_a_nul_character_in_a_parameter_is_400_not_a_server_error(small_catalog):
    for params in ({"q": "navy\x00shirt"}, {"q": "x", "colour": "Na\x00vy"}):
        response = get(params)
        assert response.status_code == 400 and "Null characters are not allowed" in str(response.json())


def test_a_query_of_512_characters_is_accepted(small_catalog):
    assert get({"q": "x" * 512}).status_code == 200


def test_no_active_model_is_503_saying_what_to_run(db):
    response = get({"q": "navy shirt"})
    assert response.status_code == 503
    assert "no active model" in response.json()["detail"]
    assert "manage.py retrain" in response.json()["detail"]


def test_an_active_model_without_its_files_is_503(small_catalog, monkeypatch):
    monkeypatch.undo()  # the real encoder: the version's artifact_path is empty
    response = get({"q": "navy shirt"})
    assert response.status_code == 503 and "no model files" in response.json()["detail"]


def test_a_ready_but_inactive_version_is_not_used(small_catalog):
    ModelVersion.objects.update(status=ModelVersion.Status.READY)
    assert get({"q": "x"}).status_code == 503


@pytest.mark.parametrize("rank_function", ["ts_rank", "ts_rank_cd"])
def test_full_text_ranks_the_product_matching_more_query_words_first(active_version, rank_function):
    from search.ranking import SearchFilters, rank_by_fulltext
    from tests.search.conftest import add_product

    check = add_product(active_version, sku="CHECK", image=None, text=basis(0), title="Navy Blue Check Shirt")
    plain = add_product(active_version, sku="PLAIN", image=None, text=basis(0), title="Navy Blue Plain Shirt")
    add_product(
        active_version,
        sku="TOP",
        image=None,
        text=basis(0),
        title="Red Crop Top",
        brand="Zara",
        colour="Red",
        article_type="Tops",
    )

    ranking = rank_by_fulltext(
        text="navy check shirt", k=10, filters=SearchFilters(), rank_function=rank_function
    )

    assert [candidate.product_id for candidate in ranking] == [check.pk, plain.pk]
    assert ranking[0].score > ranking[1].score > 0


def test_full_text_reads_attributes_and_descriptions_below_the_title(active_version):
    from search.ranking import SearchFilters, rank_by_fulltext
    from tests.search.conftest import add_product

    in_title = add_product(active_version, sku="T", image=None, text=basis(0), title="Merino Hoodie")
    in_attributes = add_product(
        active_version,
        sku="A",
        image=None,
        text=basis(0),
        title="Chaz Top",
        attributes={"Material": "Merino"},
    )
    in_description = add_product(
        active_version, sku="D", image=None, text=basis(0), title="Juno Top", description="Soft merino wool."
    )
    add_product(
        active_version, sku="X", image=None, text=basis(0), title="Nothing Alike", description="Cotton."
    )

    ranking = rank_by_fulltext(text="merino", k=10, filters=SearchFilters())

    # Title (A) before attributes (B) before description (C); the product that never says it is absent.
    assert [candidate.product_id for candidate in ranking] == [
        in_title.pk,
        in_attributes.pk,
        in_description.pk,
    ]


def test_an_unknown_full_text_rank_function_is_refused(small_catalog, settings):
    from search.ranking import FulltextQuery, SearchFilters, fulltext_sql

    query = FulltextQuery(
        tsquery="'mango'", every_word="'mango'", word_queries=("'mango'",), named_query="'mango':AB"
    )
    with pytest.raises(ValueError, match="unknown full-text rank function 'bm25'.*ts_rank"):
        fulltext_sql(k=10, filters=SearchFilters(), query=query, rank_function="bm25")
    settings.PRODUCT_SEARCH_FULLTEXT_RANK = "bm25"
    with pytest.raises(ValueError, match="bm25"):
        get({"q": "mango", "mode": "hybrid"})


@pytest.mark.parametrize(
    ("weight", "kinds_read", "order"),
    [
        (0.0, {"text"}, ["N1", "N3", "N2", "R4", "R5"]),
        (1.0, {"image"}, ["N1", "N2", "N3", "R4", "R5"]),
        (0.6, {"image", "text"}, ["N1", "N2", "N3", "R4", "R5"]),
    ],
)
def test_a_text_query_reads_only_the_indexes_whose_score_counts(
    small_catalog, settings, weight, kinds_read, order
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.PRODUCT_SEARCH_IMAGE_WEIGHT = weight
    with CaptureQueriesContext(connection) as captured:
        response = get({"q": "navy shirt"})

    assert skus(response)[:3] == order[:3]
    ranking_sql = next(query["sql"] for query in captured.captured_queries if "<=>" in query["sql"])
    assert {kind for kind in ("image", "text") if f"e.kind = '{kind}'" in ranking_sql} == kinds_read


@pytest.mark.parametrize(("limit", "offset"), [(2, 0), (4, 1)])  # a next page; the unpriced product
def test_the_response_is_what_its_documented_serializer_gives(small_catalog, limit, offset):
    from rest_framework.renderers import JSONRenderer
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from search.api import SearchPageSerializer, page_payload
    from search.ranking import SearchFilters
    from search.selectors import search_by_text

    request = Request(APIRequestFactory().get(URL, {"q": "navy shirt", "limit": limit, "offset": offset}))
    page = search_by_text(
        query="navy shirt", filters=SearchFilters(), limit=limit, offset=offset, mode="vector"
    )
    payload = page_payload(request=request, page=page)
    payload["took_ms"] = 1.5

    # What the serializer is given: the selector's product dicts, as the view once passed them.
    raw = {**payload, "results": [{**hit.product, "score": round(hit.score, 6)} for hit in page.hits]}
    serialized = SearchPageSerializer(raw, context={"request": request}).data
    assert JSONRenderer().render(payload) == JSONRenderer().render(serialized)
    assert len(payload["results"]) == limit and payload["facets"]["colour"]
    assert (payload["next"] is not None) == (offset + limit < 5)
    assert (None in [result["price"] for result in payload["results"]]) == (offset + limit == 5)


def test_an_empty_price_range_is_valid_and_relaxed(small_catalog):
    response = get({"q": "x", "min_price": "10", "max_price": "5"})

    # Nothing costs at least 10 and at most 5: the range is given up, and the page says so.
    assert response.status_code == 200
    assert response.json()["relaxed"] == [
        {"step": "filter", "param": "price", "value": {"min_price": "10", "max_price": "5"}}
    ]
    assert len(response.json()["results"]) == 5


def test_a_page_reaching_past_the_deepest_rank_served_is_cut_there(small_catalog, settings):
    settings.PRODUCT_SEARCH_MAX_WINDOW = 3

    payload = get({"q": "x", "mode": "vector", "limit": 2, "offset": 2}).json()

    assert (payload["limit"], len(payload["results"]), payload["next"]) == (1, 1, None)


@pytest.fixture
def red_tops_catalog(active_version, query_vector, settings):
    """For "women red tops": MEN has two of the words in its title and the best photo; WOMEN has every
    word in its fields (gender, colour, type) and the worst photo."""
    settings.PRODUCT_SEARCH_IMAGE_WEIGHT = 0.6
    from tests.search.conftest import add_product

    men = add_product(
        active_version, sku="MEN", image=basis(0), text=basis(0), title="Red Top", gender="Men", colour="Red"
    )
    for n, vector in enumerate([unit(1, 1), basis(1), unit(1, 2)]):
        add_product(active_version, sku=f"F{n}", image=vector, text=vector, title="Blue Shirt", colour="Blue")
    women = add_product(
        active_version,
        sku="WOMEN",
        image=basis(3),
        text=basis(3),
        title="Juno Tee",
        gender="Women",
        colour="Red",
        article_type="Tops",
    )
    return men, women


@pytest.mark.parametrize(("every_word_first", "expected_first"), [(True, "WOMEN"), (False, "MEN")])
def test_hybrid_puts_the_products_named_by_every_word_of_the_query_first(
    red_tops_catalog, settings, every_word_first, expected_first
):
    settings.PRODUCT_SEARCH_EVERY_WORD_FIRST = every_word_first

    response = get({"q": "women red tops", "mode": "hybrid"})

    assert skus(response)[0] == expected_first


def test_full_text_ranks_by_how_many_query_words_a_product_has_before_where_they_are(red_tops_catalog):
    from search.ranking import SearchFilters, rank_by_fulltext

    ranking = rank_by_fulltext(text="women red tops", k=10, filters=SearchFilters())

    # WOMEN has the three words in its attributes (weight B); MEN two of them in its title (weight A).
    assert [candidate.product_id for candidate in ranking[:2]] == [
        red_tops_catalog[1].pk,
        red_tops_catalog[0].pk,
    ]
    assert [candidate.named_by_every_word for candidate in ranking[:2]] == [True, False]


@pytest.mark.parametrize("text", ["o'neill \\ shirt", "shirt '' \\\\ :* & | !", "the and of"])
def test_full_text_takes_quotes_backslashes_and_operators_as_plain_words(active_version, text):
    from search.ranking import SearchFilters, rank_by_fulltext
    from tests.search.conftest import add_product

    shirt = add_product(active_version, sku="S", image=None, text=basis(0), title="O'Neill Navy Shirt")

    ranking = rank_by_fulltext(text=text, k=10, filters=SearchFilters())

    expected = [] if text == "the and of" else [shirt.pk]
    assert [candidate.product_id for candidate in ranking] == expected


def test_full_text_counts_the_words_of_a_long_query(active_version):
    from search.ranking import COUNTED_QUERY_WORDS, SearchFilters, rank_by_fulltext
    from tests.search.conftest import add_product

    words = [f"word{index}" for index in range(COUNTED_QUERY_WORDS + 4)]
    many = add_product(active_version, sku="MANY", image=None, text=basis(0), title=" ".join(words))
    few = add_product(active_version, sku="FEW", image=None, text=basis(0), title=" ".join(words[:3]))

    ranking = rank_by_fulltext(text=" ".join(words), k=10, filters=SearchFilters())

    assert [candidate.product_id for candidate in ranking] == [many.pk, few.pk]
    # Each product's score is the words it matched (at most COUNTED_QUERY_WORDS of them) + ts_rank < 1.
    assert int(ranking[0].score) == COUNTED_QUERY_WORDS
    assert int(ranking[1].score) == 3
    assert [candidate.named_by_every_word for candidate in ranking] == [True, False]


@pytest.mark.django_db
def test_full_text_reads_at_most_its_cap_of_partial_matches_after_the_products_with_every_word(settings):
    from catalog.services import product_create
    from search.ranking import SearchFilters, rank_by_fulltext

    settings.PRODUCT_SEARCH_FULLTEXT_MAX_MATCHES = 3
    partial = [product_create(sku=f"S{index}", title=f"Plain Shirt {index}") for index in range(8)]
    every_word = [product_create(sku=f"N{index}", title=f"Navy Shirt {index}") for index in range(2)]

    ranking = rank_by_fulltext(text="navy shirt", k=10, filters=SearchFilters())

    ids = [candidate.product_id for candidate in ranking]
    assert set(ids[:2]) == {product.pk for product in every_word}
    # Fewer than k products have every word, so products with some of them fill in, at most 3 read.
    assert 3 <= len(ids) <= 2 + 3 and set(ids[2:]) <= {product.pk for product in partial}
    settings.PRODUCT_SEARCH_FULLTEXT_MAX_MATCHES = 100
    assert len(rank_by_fulltext(text="navy shirt", k=10, filters=SearchFilters())) == 10
