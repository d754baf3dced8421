"""Typos corrected to the catalogue's words, and searches that would find nothing relaxed, said so."""

from __future__ import annotations

import pytest

from search.spelling import Vocabulary, query_correct_spelling
from tests.search.conftest import add_product, basis, index_build, unit
from tests.search.test_api_search import get


def _titles_match(titles):
    def which_match(queries):
        return [
            any(set(query.lower().split()) <= set(title.split()) for title in titles) for query in queries
        ]

    return which_match


def test_unknown_words_are_corrected_to_the_nearest_catalogue_words():
    vocabulary = Vocabulary({"navy": 40, "check": 12, "shirt": 50, "shorts": 9, "black": 30, "jeans": 8})

    correction = query_correct_spelling("Navvy chek shirt", vocabulary=vocabulary)

    assert correction.corrected == "navy check shirt"
    assert correction.changes == [("Navvy", "navy"), ("chek", "check")]


@pytest.mark.parametrize(
    "query",
    [
        "navy check shirt",  # every word is the catalogue's
        "party shirt",  # no catalogue word is one edit from "party"
        "xl 32 s",  # words of one or two letters and numbers
        "zzzzqqqq",  # nothing near
    ],
)
def test_known_short_and_faraway_words_are_left_as_typed(query):
    vocabulary = Vocabulary({"navy": 40, "check": 12, "shirt": 50, "pants": 3, "tea": 1})

    assert query_correct_spelling(query, vocabulary=vocabulary).corrected is None


def test_three_letter_words_are_corrected_unless_a_synonym_names_them():
    vocabulary = Vocabulary({"grey": 40, "tea": 1})

    assert query_correct_spelling("gry tee", vocabulary=vocabulary).corrected == "grey tea"
    assert query_correct_spelling("gry tee", vocabulary=vocabulary, known={"tee"}).corrected == "grey tee"


def test_the_most_used_of_equally_close_words_wins_and_long_words_allow_two_edits():
    vocabulary = Vocabulary({"shirts": 5, "shorts": 50, "sweatshirt": 7, "sweaters": 3})
    no_product_decides = _titles_match([])

    assert (
        query_correct_spelling("shrts", vocabulary=vocabulary, which_match=no_product_decides).corrected
        == "shorts"
    )
    assert query_correct_spelling("swetshirtt", vocabulary=vocabulary).corrected == "sweatshirt"
    assert query_correct_spelling("wwaters", vocabulary=vocabulary).corrected == "sweaters"  # from 7 letters
    assert query_correct_spelling("wwater", vocabulary=vocabulary).corrected is None


@pytest.fixture
def titled_catalog(active_version, query_vector, settings):
    settings.PRODUCT_SEARCH_IMAGE_WEIGHT = 0.0
    check = add_product(
        active_version, sku="CHECK", image=None, text=unit(0, 1), title="Navy Check Shirt", colour="Navy Blue"
    )
    plain = add_product(
        active_version, sku="PLAIN", image=None, text=basis(0), title="Red Plain Tshirt", colour="Red"
    )
    index_build(active_version)
    return check, plain


def test_a_typod_query_is_searched_corrected_and_says_so(titled_catalog):
    body = get({"q": "navvy chek shirt", "mode": "hybrid"}).json()

    assert body["corrected_query"] == "navy check shirt"
    assert skus_of(body)[0] == "CHECK"

    as_typed = get({"q": "navvy chek shirt", "mode": "hybrid", "correct_spelling": "false"}).json()
    assert as_typed["corrected_query"] is None


def test_a_filter_that_leaves_nothing_is_relaxed_and_named(titled_catalog):
    body = get({"q": "shirt", "colour": "Green", "mode": "hybrid"}).json()

    assert body["relaxed"] == [{"step": "filter", "param": "colour", "value": ["Green"]}]
    assert skus_of(body) == ["CHECK", "PLAIN"]


def test_filters_are_given_up_in_the_stated_order_until_something_is_found(titled_catalog, settings):
    settings.PRODUCT_SEARCH_RELAX_FILTER_ORDER = ("price", "colour", "brand")

    body = get({"q": "shirt", "colour": "Red", "brand": "Nobody", "max_price": "10", "mode": "vector"}).json()

    assert [step["param"] for step in body["relaxed"]] == ["price", "colour", "brand"]
    assert body["relaxed"][0]["value"] == {"min_price": None, "max_price": "10"}
    assert len(body["results"]) == 2


def test_products_that_matched_every_filter_stay_before_the_relaxed_ones(titled_catalog, settings):
    settings.PRODUCT_SEARCH_RELAX_BELOW = 2  # one red product is too few

    body = get({"q": "shirt", "colour": "Red", "mode": "vector"}).json()

    assert skus_of(body) == ["PLAIN", "CHECK"]  # PLAIN is red; CHECK ranks higher but was added back
    assert body["relaxed"] == [{"step": "filter", "param": "colour", "value": ["Red"]}]


def test_a_hybrid_query_no_product_has_a_word_of_is_answered_by_meaning_and_says_so(titled_catalog):
    body = get({"q": "zzzzqqqq", "mode": "hybrid"}).json()

    assert body["relaxed"] == [{"step": "words", "param": None, "value": None}]
    assert len(body["results"]) == 2
    assert get({"q": "shirt", "mode": "hybrid"}).json()["relaxed"] == []


def skus_of(body):
    return [result["sku"] for result in body["results"]]


def test_combinations_come_likeliest_first_and_stay_few_however_many_words_are_mistyped():
    from search.spelling import MAX_COMBINATIONS, _likeliest_combinations

    two_words = _likeliest_combinations({0: ["a", "b"], 2: ["x", "y", "z"]})
    assert two_words[:3] == [{0: "a", 2: "x"}, {0: "a", 2: "y"}, {0: "b", 2: "x"}]
    assert len(two_words) == 6
    # Forty mistyped words of four corrections each: 4**40 combinations, of which only the first few.
    many = _likeliest_combinations({position: ["a", "b", "c", "d"] for position in range(40)})
    assert len(many) == MAX_COMBINATIONS and many[0] == dict.fromkeys(range(40), "a")
    assert _likeliest_combinations({}) == [{}]


def test_a_typo_that_makes_a_rarer_catalogue_word_is_replaced_when_the_query_then_matches():
    vocabulary = Vocabulary({"back": 2, "black": 400, "shirt": 300, "pack": 3})
    which_match = _titles_match(["black shirt", "back pack"])

    corrected = query_correct_spelling("back shirt", vocabulary=vocabulary, which_match=which_match)
    assert corrected.corrected == "black shirt" and corrected.changes == [("back", "black")]
    # A query whose words co-occur as typed is left alone, rare words and all.
    assert (
        query_correct_spelling("back pack", vocabulary=vocabulary, which_match=which_match).corrected is None
    )


def test_among_close_corrections_the_combination_some_product_has_wins():
    # "shit" is one edit from both; "shift" is used more, but no product is a blue shift.
    vocabulary = Vocabulary({"blue": 300, "shift": 90, "shirt": 80, "dress": 50})
    which_match = _titles_match(["blue shirt", "shift dress"])

    correction = query_correct_spelling("blie shit", vocabulary=vocabulary, which_match=which_match)
    assert correction.corrected == "blue shirt"
    assert correction.changes == [("blie", "blue"), ("shit", "shirt")]
    # With no product to tell them apart, the likeliest word per word stands.
    nothing = _titles_match([])
    assert (
        query_correct_spelling("blie shit", vocabulary=vocabulary, which_match=nothing).corrected
        == "blue shift"
    )


def test_the_catalogue_check_reads_titles_and_attributes_not_descriptions(active_version):
    from search.spelling import catalogue_has_every_word, catalogue_matches

    add_product(
        active_version,
        sku="B",
        image=None,
        text=basis(0),
        title="Black Shirt",
        description="Buttons at the back.",
    )

    assert catalogue_has_every_word("black shirt")
    assert not catalogue_has_every_word("back shirt")
    assert catalogue_matches(["back shirt", "Shirt, black!", "shirt buttons"]) == [False, True, False]


def test_words_the_shop_uses_only_in_descriptions_are_left_as_typed_and_never_a_correction():
    vocabulary = Vocabulary({"shirt": 50, "socks": 30}, described=frozenset({"wicks"}))

    assert query_correct_spelling("wicks sweat", vocabulary=vocabulary).corrected is None
    assert query_correct_spelling("wickss shirt", vocabulary=vocabulary).corrected is None
