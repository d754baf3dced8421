"""The full-text SQL takes the query's tsqueries as constants, computed first (fulltext_query_for): the
planner then estimates their matches from the column statistics, and the ranking is the one the words
define (words matched, then the rank function)."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from catalog.models import Product
from search.facets import facet_matches_sql
from search.ranking import (
    SearchFilters,
    fulltext_query_for,
    fulltext_sql,
    fulltext_words,
    rank_by_fulltext,
    set_fulltext_scan_options,
)
from tests.factories import ProductFactory
from tests.search.conftest import add_product, basis, index_build
from tests.search.test_api_search import get

pytestmark = pytest.mark.django_db

COLOURS = ("Navy Blue", "Red", "Black", "White", "Green")
GENDERS = ("Men", "Women")
TYPES = ("Shirts", "Tops", "Jeans", "Tshirts")
TITLE_WORDS = ("Check", "Plain", "Slim", "Cotton", "Printed", "Denim")


def _catalogue() -> list[Product]:
    """Every (colour, gender, type) with a title of two words from TITLE_WORDS and the type's word:
    products share words in many proportions, so ranks tie and differ."""
    products = []
    pairs = itertools.cycle(itertools.combinations(TITLE_WORDS, 2))
    for colour, gender, article_type in itertools.product(COLOURS, GENDERS, TYPES):
        first, second = next(pairs)
        products.append(
            ProductFactory.build(
                title=f"{first} {second} {article_type.rstrip('s')}",
                colour=colour,
                gender=gender,
                article_type=article_type,
                description=f"{second} {colour.split()[0]} weave" if len(products) % 3 == 0 else "",
            )
        )
    return Product.objects.bulk_create(products)


def _expected_order(words: list[str], k: int) -> list[tuple[int, float]]:
    """The ranking from first principles, every tsquery built in the statement itself: products with
    any word, by the words they have plus ts_rank / (1 + ts_rank) over any word, then by id."""
    params: dict[str, str] = {f"w{index}": word for index, word in enumerate(words)}
    word_queries = [f"plainto_tsquery('english', %(w{index})s)" for index in range(len(words))]
    any_word = " || ".join(word_queries)
    matched = " + ".join(f"(p.search_document @@ {query})::int" for query in word_queries)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.id, {matched} + ts_rank(p.search_document, {any_word})"
            f" / (1 + ts_rank(p.search_document, {any_word})) AS rank"
            f" FROM catalog_product p WHERE p.is_active AND p.search_document @@ ({any_word})"
            f" ORDER BY rank DESC, p.id LIMIT {k}",
            params,
        )
        return [(row[0], float(row[1])) for row in cursor.fetchall()]


@pytest.mark.parametrize(
    "text", ["navy shirt", "women red tops", "slim denim jeans black", "printed cotton tshirt men", "weave"]
)
def test_the_ranking_is_the_words_matched_then_the_rank_of_any_word(text):
    _catalogue()

    ranking = rank_by_fulltext(text=text, k=12, filters=SearchFilters())

    expected = _expected_order(text.split(), k=12)
    assert expected
    assert [candidate.product_id for candidate in ranking] == [product_id for product_id, _ in expected]
    assert [candidate.score for candidate in ranking] == pytest.approx([score for _, score in expected])


def test_a_query_of_stop_words_only_has_no_tsquery_and_is_ranked_at_no_second_query():
    _catalogue()

    assert fulltext_query_for([["the"], ["and", "of"]]) is None
    assert fulltext_query_for(fulltext_words("!!! --")) is None  # no word at all: no query either
    with CaptureQueriesContext(connection) as captured:
        ranking = rank_by_fulltext(text="the and of", k=10, filters=SearchFilters())

    assert ranking == []
    assert len(captured.captured_queries) == 1


def test_a_word_is_matched_by_any_of_its_alternatives_and_counted_once():
    navy_tee = ProductFactory(title="Navy Cotton Tee", colour="Navy Blue")
    t_shirt = ProductFactory(title="Graphic T-Shirt", colour="Red")
    hooded = ProductFactory(title="Hooded Sweatshirt", colour="Grey")
    ProductFactory(title="Hooded Jacket", colour="Grey")  # half of a phrase is no match
    words = [["navy"], ["tee", "t-shirt", "hooded sweatshirt"]]

    ranking = rank_by_fulltext(alternatives=words, k=10, filters=SearchFilters())

    assert ranking[0].product_id == navy_tee.pk
    assert {candidate.product_id for candidate in ranking[1:]} == {t_shirt.pk, hooded.pk}
    # The words matched: "navy" and one of the second word's alternatives, or only the latter.
    assert [int(candidate.score) for candidate in ranking] == [2, 1, 1]
    assert [candidate.named_by_every_word for candidate in ranking] == [True, False, False]


CONDITIONS = ("Index Cond", "Recheck Cond", "Filter")


def _scans_of_the_products(plan: dict) -> list[dict]:
    """The plan's nodes reading catalog_product with a full-text condition."""
    found = []
    if plan.get("Relation Name") == "catalog_product" and any("@@" in plan.get(c, "") for c in CONDITIONS):
        found.append(plan)
    for child in plan.get("Plans", []):
        found += _scans_of_the_products(child)
    return found


def _explain(sql: str, params: dict) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        (document,) = cursor.fetchone()
    return (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]


@pytest.fixture
def shirts_and_a_rare_word():
    """300 shirts (the factory's title and type), two of them with a rare word; statistics gathered."""
    products = ProductFactory.build_batch(300)
    for product in products[:2]:
        product.title += " Seersucker"
    Product.objects.bulk_create(products)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_product")


def test_explain_shows_the_query_words_as_constants_estimated_from_the_statistics(shirts_and_a_rare_word):
    estimates = {}
    for word in ("shirt", "seersucker"):
        query = fulltext_query_for([[word]])
        assert query is not None
        plan = _explain(*fulltext_sql(k=10, filters=SearchFilters(), query=query))

        scans = _scans_of_the_products(plan)
        assert scans
        for scan in scans:
            condition = next(scan[c] for c in CONDITIONS if "@@" in scan.get(c, ""))
            # The word's lexeme as a literal, not a parameter or a CTE's or an InitPlan's output.
            assert re.search(rf"search_document @@ '''{word[:5]}\w*'''::tsquery", condition), condition
        estimates[word] = max(scan["Plan Rows"] for scan in scans)

    # A tsquery known only at run time gets one fixed selectivity whatever its words.
    assert estimates["shirt"] > 20 * estimates["seersucker"]


@pytest.mark.parametrize(("seqscan_from", "sequential"), [(0, True), (10**9, False)])
def test_a_catalogue_smaller_than_the_setting_has_its_matches_read_through_the_gin_index(
    shirts_and_a_rare_word, settings, seqscan_from, sequential
):
    settings.PRODUCT_SEARCH_FULLTEXT_SEQSCAN_FROM_PRODUCTS = seqscan_from
    query = fulltext_query_for([["shirt"]])
    assert query is not None

    with transaction.atomic(), connection.cursor() as cursor:
        set_fulltext_scan_options(cursor)
        scans = _scans_of_the_products(_explain(*fulltext_sql(k=10, filters=SearchFilters(), query=query)))
    ranking = rank_by_fulltext(text="seersucker shirt", k=10, filters=SearchFilters())

    # Every product has the word: the planner reads them all in a sequential scan when it may.
    assert scans and any(scan["Node Type"] == "Seq Scan" for scan in scans) == sequential
    assert [candidate.product_id for candidate in ranking] == [
        product_id for product_id, _ in _expected_order(["seersucker", "shirt"], k=10)
    ]


def test_the_facet_count_reads_the_same_tsquery_as_a_constant(shirts_and_a_rare_word):
    query = fulltext_query_for([["seersucker"]])
    assert query is not None

    scans = _scans_of_the_products(
        _explain(*facet_matches_sql(filters=SearchFilters(), words=query, hidden=(), cap=100))
    )

    assert scans and all("'''seersuck'''::tsquery" in json.dumps(scan) for scan in scans)


def test_a_hybrid_search_computes_its_tsqueries_once_for_its_rankings_and_facets(
    active_version, query_vector
):
    add_product(active_version, sku="CHECK", image=None, text=basis(0), title="Navy Check Shirt")
    add_product(active_version, sku="PLAIN", image=None, text=basis(1), title="Red Plain Shirt", colour="Red")
    index_build(active_version)

    with CaptureQueriesContext(connection) as captured:
        # No product is green: the colour filter is given up and the words ranked again without it.
        body = get({"q": "navy shirt", "colour": "Green", "mode": "hybrid"}).json()

    assert body["relaxed"] == [{"step": "filter", "param": "colour", "value": ["Green"]}]
    assert body["facets_basis"]["kind"] == "all_matches"
    sql = [query["sql"] for query in captured.captured_queries]
    assert sum("WITH alternatives AS" in statement for statement in sql) == 1
    assert sum("with_every_word" in statement for statement in sql) == 2
