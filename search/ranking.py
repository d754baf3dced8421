"""The ranking SQL: nearest products by cosine in pgvector, and full-text ranks for hybrid search.

Every vector query has the shape the per-version partial HNSW indexes answer
(catalog/vector_indexes.py): `WHERE model_version_id = <literal> AND kind = '<literal>' ORDER BY
(embedding::halfvec(dim)) <=> query LIMIT k`. Version id and kind are inlined as literals (never
parameters), so the partial-index predicate matches even in a prepared statement.

Filters join `catalog_product`. pgvector 0.8's iterative index scan (`hnsw.iterative_scan =
relaxed_order`, set per transaction) keeps reading the index until `k` rows pass the filters, so a
filter that keeps 5% of the products still fills the page; relaxed order means the rows come back
nearly sorted, so the outer query sorts them again by exact distance.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import transaction

from catalog.selectors import PRIMARY_PHOTO_SQL
from lifecycle.fields import halfvec_literal
from lifecycle.models import ModelVersion
from lifecycle.vector_indexes import vector_expression
from search.conf import search_settings
from search.filters import FILTER_COLUMNS
from search.read_replica import search_connection

# What a result shows, read in the ranking query itself (no second product query).
RESULT_COLUMNS = ("sku", "title", "brand", "colour", "gender", "article_type", "price", "currency")
# ...and the stored name of the product's first photo is read there too (no photo query either).
ATTRIBUTE_NAMES = (*RESULT_COLUMNS, "primary_photo")
RESULT_SELECT = ", ".join(
    [*(f"p.{column}" for column in RESULT_COLUMNS), f"{PRIMARY_PHOTO_SQL} AS primary_photo"]
)
# hnsw.ef_search accepts 1..1000.
EF_SEARCH_MAX = 1000


@dataclass(frozen=True)
class SearchFilters:
    """Attribute filters (exact values; several values of one filter mean OR)."""

    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    # Not exposed by the API: restricts a ranking to these products (benchmarks, tests).
    product_ids: tuple[int, ...] | None = None
    exclude_product_id: int | None = None

    def where_sql(self, alias: str = "p") -> tuple[str, dict[str, Any]]:
        """SQL conditions on catalog_product (`alias`) and their named parameters."""
        conditions = [f"{alias}.is_active"]
        params: dict[str, Any] = {}
        for name, values in sorted(self.values.items()):
            if not values:
                continue
            condition, value_params = self.value_condition(name, alias)
            conditions.append(condition)
            params.update(value_params)
        if self.min_price is not None:
            conditions.append(f"{alias}.price >= %(min_price)s")
            params["min_price"] = self.min_price
        if self.max_price is not None:
            conditions.append(f"{alias}.price <= %(max_price)s")
            params["max_price"] = self.max_price
        if self.product_ids is not None:
            conditions.append(f"{alias}.id = ANY(%(only_ids)s)")
            params["only_ids"] = list(self.product_ids)
        if self.exclude_product_id is not None:
            conditions.append(f"{alias}.id <> %(exclude_id)s")
            params["exclude_id"] = self.exclude_product_id
        return " AND ".join(conditions), params

    def value_condition(self, name: str, alias: str = "p") -> tuple[str, dict[str, Any]]:
        """The SQL condition of one attribute filter (`name`, one of FILTER_COLUMNS) and its parameter."""
        if name not in FILTER_COLUMNS:
            raise ValueError(f"Unknown filter {name!r}; filters are {', '.join(FILTER_COLUMNS)}")
        # Exact values (as the facets list them): the planner then knows from the column
        # statistics how selective the filter is, and picks the HNSW scan or an exact scan.
        values = [value.strip() for value in self.values.get(name, ())]
        return f"{alias}.{name} = ANY(%(f_{name})s)", {f"f_{name}": values}

    @property
    def restricts(self) -> bool:
        """Whether these filters keep only some of the active products ("more like this" leaving one
        product out does not count)."""
        return (
            any(self.values.values())
            or self.min_price is not None
            or self.max_price is not None
            or self.product_ids is not None
        )

    def without(self, *names: str) -> SearchFilters:
        """These filters less the attribute filters `names` (the price range and the rest stay)."""
        return replace(self, values={key: value for key, value in self.values.items() if key not in names})


@dataclass(frozen=True)
class Candidate:
    """One product in a ranking, with what its result and the facets show (ATTRIBUTE_NAMES)."""

    product_id: int
    score: float
    image_similarity: float | None
    text_similarity: float | None
    attributes: dict[str, Any]
    # Full text only: every word of the query is in the product's title or attributes.
    named_by_every_word: bool = False


def vector_literal(vector: np.ndarray) -> str:
    """The query vector as SQL text; the queries cast it to halfvec, so it is rounded to half precision
    as the stored vectors are."""
    return halfvec_literal(vector)


def _nearest_cte(
    *, name: str, version: ModelVersion, kind: str, k: int, where: str, exact: bool = False
) -> str:
    """The k nearest `kind` rows of the version under the product filters: the HNSW-index query, or
    with `exact` every filtered product's distance, sorted (the order expression then differs from the
    index's, so the planner cannot answer it from the HNSW index and reads the filtered rows)."""
    dim = int(version.embedding_dim or 0)
    expression = vector_expression(dim=dim)
    order = f"{expression} <=> %(q_{kind})s::halfvec({dim})"
    return (
        f"{name} AS MATERIALIZED (\n"
        f"  SELECT e.product_id, {expression} <=> %(q_{kind})s::halfvec({dim}) AS distance\n"
        f"  FROM catalog_productembedding e JOIN catalog_product p ON p.id = e.product_id\n"
        f"  WHERE e.model_version_id = {int(version.pk)} AND e.kind = '{kind}' AND {where}\n"
        f"  ORDER BY {f'({order}) + 0' if exact else order}\n"
        f"  LIMIT {int(k)}\n"
        ")"
    )


def nearest_sql(
    *, version: ModelVersion, kind: str, k: int, filters: SearchFilters, exact: bool = False
) -> tuple[str, dict]:
    """One index's k nearest products, alone (used by EXPLAIN tests and the latency benchmark)."""
    where, params = filters.where_sql()
    cte = _nearest_cte(name="hits", version=version, kind=kind, k=k, where=where, exact=exact)
    return f"WITH {cte}\nSELECT product_id, distance FROM hits ORDER BY distance", params


def ranking_sql(
    *,
    version: ModelVersion,
    kinds: Sequence[str],
    image_weight: float,
    k: int,
    filters: SearchFilters,
    exact: bool = False,
) -> tuple[str, dict[str, Any]]:
    """Products near the query vectors, scored and sorted, best first.

    Each kind in `kinds` (image, text) contributes its k nearest products under the filters; every
    candidate is then scored exactly against both kinds (best photo of each product), and the score
    is `image_weight * photo similarity + (1 - image_weight) * text similarity` (similarity = 1 -
    cosine distance). A product with no vector of one kind is scored by the other alone. `exact`
    reads every filtered product instead of the HNSW indexes (_nearest_cte).
    """
    where, params = filters.where_sql()
    dim = int(version.embedding_dim or 0)
    expression = vector_expression(dim=dim)
    ctes = [
        _nearest_cte(name=f"{kind}_hits", version=version, kind=kind, k=k, where=where, exact=exact)
        for kind in kinds
    ]
    # UNION (and DISTINCT for one kind) keeps a product with several close photos once.
    union = " UNION ".join(f"SELECT DISTINCT product_id FROM {kind}_hits" for kind in kinds)
    # Each candidate's exact distance per kind (its best photo): from the hits when it is among them,
    # else looked up by (version, product). COALESCE evaluates the lookup only when needed.
    per_kind = ",\n".join(
        f"    coalesce((SELECT min(h.distance) FROM {kind}_hits h WHERE h.product_id = c.product_id),\n"
        f"      (SELECT min({expression} <=> %(q_{kind})s::halfvec({dim})) FROM catalog_productembedding e\n"
        f"       WHERE e.model_version_id = {int(version.pk)} AND e.kind = '{kind}'"
        f" AND e.product_id = c.product_id)) AS {kind}_distance"
        for kind in kinds
    )
    if len(kinds) == 2:
        weight = float(image_weight)
        score = (
            f"coalesce({weight!r} * (1 - s.image_distance) + {1 - weight!r} * (1 - s.text_distance), "
            "1 - s.image_distance, 1 - s.text_distance)"
        )
    else:
        score = f"1 - s.{kinds[0]}_distance"
    distances = ", ".join(f"s.{kind}_distance" for kind in kinds)
    sql = (
        "WITH " + ",\n".join(ctes) + f",\ncandidates AS ({union}),\n"
        "scored AS (\n"
        f"  SELECT c.product_id,\n{per_kind}\n"
        "  FROM candidates c\n"
        ")\n"
        f"SELECT s.product_id, {score} AS score, {distances}, {RESULT_SELECT}\n"
        "FROM scored s JOIN catalog_product p ON p.id = s.product_id\n"
        "ORDER BY score DESC, s.product_id"
    )
    return sql, params


# Full-text rank functions a search may use (FULLTEXT_RANK). A query's ORed words often match a
# fifth of the catalogue, and cover density (`ts_rank_cd`) is costly per match: on the 9,583-product
# bench catalogue the query takes ~33 ms with it and ~11 ms with `ts_rank` (BENCHMARKS.md).
FULLTEXT_RANK_FUNCTIONS = ("ts_rank", "ts_rank_cd")
# A full-text rank counts the query's words a product matches up to this many (the first ones):
# longer queries are descriptions pasted whole, ranked on those and ts_rank.
COUNTED_QUERY_WORDS = 16
# The full-text ranking orders its best FULLTEXT_POOL_FACTOR x k matches (at least FULLTEXT_MIN_POOL) by
# words matched, chosen by an unweighted ts_rank (fulltext_sql).
FULLTEXT_POOL_FACTOR = 4
FULLTEXT_MIN_POOL = 500
# A query word: letters and digits, with inner hyphens and apostrophes ("t-shirt", "men's").
QUERY_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


def query_words(text: str) -> list[str]:
    return QUERY_WORD.findall(text)


@dataclass(frozen=True)
class FulltextQuery:
    """A query's words as tsqueries (their text, as PostgreSQL writes a tsquery), made by
    fulltext_query_for and written into the ranking and facet SQL as constants."""

    # Any of the words (each word: any of its alternatives): what a product must match to be ranked.
    tsquery: str
    # Every word: the products drawn first.
    every_word: str
    # One per word that has a lexeme, in the query's order: the words a product matches are counted.
    word_queries: tuple[str, ...]
    # Every word, each in the title or attributes (weights A and B).
    named_query: str


def fulltext_query_for(words: Sequence[Sequence[str]]) -> FulltextQuery | None:
    """The tsqueries of `words` (per query word or phrase, what may stand for it: itself and its
    synonyms, search/synonyms.py), in one round trip; None when no word has a lexeme (stop words,
    punctuation): nothing can match, and there is nothing to rank.

    They are computed apart from the ranking so that the ranking's and the facet count's SQL hold them
    as constants (the project's psycopg binds parameters client-side): the planner then estimates from
    the search_document statistics how many products each matches, where a tsquery built while the
    statement runs gets one fixed guess, and on a large catalogue reads a broad query's matches by a
    scan that stops at the cap (set_fulltext_scan_options) instead of first collecting every one of
    them from the GIN index.
    """
    words = [list(group) for group in words]
    if not any(words):
        return None
    # Per word (its position in `words`), its alternatives' tsqueries ORed; a word none of whose
    # alternatives has a lexeme is left out.
    sql = (
        "WITH alternatives AS (\n"
        "  SELECT word.position, string_agg('(' || alternative_query::text || ')', ' | ') AS query_text\n"
        "  FROM jsonb_array_elements(%(words)s::jsonb) WITH ORDINALITY AS word(alternatives, position)\n"
        "  CROSS JOIN LATERAL jsonb_array_elements_text(word.alternatives) AS alternative\n"
        "  CROSS JOIN LATERAL plainto_tsquery('english', alternative) AS alternative_query\n"
        "  WHERE numnode(alternative_query) > 0\n"
        "  GROUP BY word.position\n"
        ")\n"
        "SELECT (SELECT string_agg('(' || query_text || ')', ' | ') FROM alternatives)::tsquery::text,\n"
        "  (SELECT string_agg('(' || query_text || ')', ' & ') FROM alternatives)::tsquery::text,\n"
        "  ARRAY(SELECT query_text::tsquery::text FROM alternatives ORDER BY position),\n"
        "  (SELECT string_agg('(' || regexp_replace(query_text, $re$('(?:[^']|'')*')$re$, '\\1:AB', 'g')\n"
        "     || ')', ' & ') FROM alternatives)::tsquery::text"
    )
    with search_connection().cursor() as cursor:
        cursor.execute(sql, {"words": json.dumps(words)})
        tsquery, every_word, word_queries, named_query = cursor.fetchone()
    if tsquery is None:
        return None
    return FulltextQuery(
        tsquery=tsquery, every_word=every_word, word_queries=tuple(word_queries), named_query=named_query
    )


def set_fulltext_scan_options(cursor: Any) -> None:
    """This transaction's planner options for the full-text SQL (fulltext_sql, the facet count), run
    before it.

    With the query's tsqueries as constants the planner may read a broad query's matches by a
    sequential scan that stops at the cap, where a GIN bitmap scan first collects every match. It
    prices the scan's `@@` at one operator per row, but each row's search document is decompressed
    and matched, which the bitmap scan never does; stopping early pays only where a broad query
    matches far more products than the cap, on a catalogue of at least FULLTEXT_SEQSCAN_FROM_PRODUCTS
    products (PostgreSQL's estimate), and sequential scans are off below it. On a large table a
    sequential scan starts where the last one stopped (synchronize_seqscans): the cap would keep other
    matches, and the ranking differ, from one search to the next, so it always starts at the beginning.
    """
    cursor.execute(
        "SELECT set_config('synchronize_seqscans', 'off', true),"
        " set_config('enable_seqscan', CASE WHEN c.reltuples >= %(seqscan_from)s THEN 'on' ELSE 'off' END,"
        " true) FROM pg_class c WHERE c.oid = 'catalog_product'::regclass",
        {"seqscan_from": int(search_settings.FULLTEXT_SEQSCAN_FROM_PRODUCTS)},
    )


def fulltext_query_sql(query: FulltextQuery) -> tuple[str, dict[str, Any]]:
    """The `query` CTE of the full-text SQL (tsquery, every_word, word_queries, named_query) as
    constants, with its parameters: a NOT MATERIALIZED CTE is inlined where it is used, so each
    `@@` compares with a literal the planner sees."""
    counted = query.word_queries[:COUNTED_QUERY_WORDS]
    params: dict[str, Any] = {
        "fts_any_word": query.tsquery,
        "fts_every_word": query.every_word,
        "fts_named": query.named_query,
    }
    params.update({f"fts_word_{index}": word for index, word in enumerate(counted, start=1)})
    word_queries = ", ".join(f"%(fts_word_{index})s::tsquery" for index in range(1, len(counted) + 1))
    sql = (
        "query AS NOT MATERIALIZED (\n"
        "  SELECT %(fts_any_word)s::tsquery AS tsquery, %(fts_every_word)s::tsquery AS every_word,\n"
        f"    ARRAY[{word_queries}]::tsquery[] AS word_queries, %(fts_named)s::tsquery AS named_query\n"
        ")"
    )
    return sql, params


def fulltext_sql(
    *, k: int, filters: SearchFilters, query: FulltextQuery, rank_function: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Products whose search document matches any word of the query (fulltext_query_for), best first:
    by how many of the query's words they match, then by `rank_function` (which weighs title over
    attributes over description).

    Words are ORed (plainto_tsquery ANDs them): a shopper's query rarely matches every word of a title.
    But a product that has every word ("men black shorts": gender, colour and type) comes before one
    that has two of them in its title, as Meilisearch's first ranking rule ("words") puts it.
    """
    rank_function = rank_function or search_settings.FULLTEXT_RANK
    if rank_function not in FULLTEXT_RANK_FUNCTIONS:
        raise ValueError(
            f"unknown full-text rank function {rank_function!r}; use one of {FULLTEXT_RANK_FUNCTIONS}"
        )
    where, params = filters.where_sql()
    query_cte, query_params = fulltext_query_sql(query)
    params.update(query_params)
    # Two steps, so that per-row work beyond the GIN match and one rank runs on a few rows only: the
    # best FULLTEXT_POOL_FACTOR x k matches by a rank that weighs every part of the document alike
    # (how many of the query's lexemes a product has, wherever), then among them the words matched
    # (one `@@` per query word, for the first COUNTED_QUERY_WORDS words; a word is matched by any of
    # its alternatives, i.e. synonyms), then `rank_function` (title over attributes over description).
    # "Every word in title or attributes" is one tsquery of the words' lexemes weighted A or B.
    #
    # The pool is drawn from the products that have every word first: they come before any other in the
    # final order (they match the most words), so when there are k of them no other product can reach
    # the page, and products with some of the words are read only when there are fewer. Each draw reads
    # at most FULLTEXT_MAX_MATCHES matches: ranking every product with any word of a long query read
    # most of a large catalogue (docs/scaling.md).
    words_matched = " + ".join(
        f"(p.search_document @@ query.word_queries[{index}])::int"
        for index in range(1, min(len(query.word_queries), COUNTED_QUERY_WORDS) + 1)
    )
    pool = max(int(k) * FULLTEXT_POOL_FACTOR, FULLTEXT_MIN_POOL)
    most_read = int(search_settings.FULLTEXT_MAX_MATCHES)

    def best_matches(tsquery: str) -> str:
        # One match more than is ranked is read, to tell whether there were more: `matched` counts the
        # matches read, `read_order` leaves the extra one out of the ranking.
        return (
            "  SELECT m.id, m.matched FROM query, (\n"
            "    SELECT r.id, r.search_document, count(*) OVER () AS matched,\n"
            "      row_number() OVER () AS read_order FROM (\n"
            "      SELECT p.id, p.search_document FROM catalog_product p, query\n"
            f"      WHERE p.search_document @@ query.{tsquery} AND {where}\n"
            f"      LIMIT {most_read + 1}\n"
            "    ) r\n"
            "  ) m\n"
            f"  WHERE m.read_order <= {most_read}\n"
            f"  ORDER BY ts_rank('{{1,1,1,1}}', m.search_document, query.tsquery) DESC, m.id LIMIT {pool}\n"
        )

    sql = (
        f"WITH {query_cte}, with_every_word AS MATERIALIZED (\n"
        f"{best_matches('every_word')}"
        "), with_any_word AS MATERIALIZED (\n"
        f"  SELECT * FROM (\n{best_matches('tsquery')}  ) any_word\n"
        f"  WHERE (SELECT count(*) FROM with_every_word) < {int(k)}\n"
        "), pool AS (\n"
        "  SELECT id FROM with_every_word UNION SELECT id FROM with_any_word\n"
        ")\n"
        "SELECT p.id,\n"
        f"  {words_matched}\n"
        f"    + {rank_function}(p.search_document, query.tsquery)\n"
        f"      / (1 + {rank_function}(p.search_document, query.tsquery)) AS rank,\n"
        "  coalesce(p.search_document @@ query.named_query, false) AS named_by_every_word,\n"
        "  (SELECT coalesce(max(matched), 0) FROM (SELECT matched FROM with_every_word\n"
        "   UNION ALL SELECT matched FROM with_any_word) draws) AS matches_read,\n"
        f"  {RESULT_SELECT}\n"
        "FROM pool JOIN catalog_product p ON p.id = pool.id, query\n"
        f"ORDER BY rank DESC, p.id LIMIT {int(k)}"
    )
    return sql, params


def _set_scan_options(cursor: Any, *, k: int) -> None:
    """Per-transaction HNSW options: a candidate list of at least k and HNSW_EF_SEARCH, and of
    HNSW_EF_SEARCH_PER_MILLION for each million products in the catalogue (PostgreSQL's estimate of
    its size, read in the same statement), at most EF_SEARCH_MAX; iterative scans for filters."""
    cursor.execute(
        "SELECT set_config('hnsw.ef_search', least(%s, greatest(%s, ceil(%s * (SELECT reltuples"
        " FROM pg_class WHERE oid = 'catalog_product'::regclass) / 1e6)))::int::text, true),"
        " set_config('hnsw.iterative_scan', 'relaxed_order', true),"
        " set_config('hnsw.max_scan_tuples', %s, true)",
        [
            EF_SEARCH_MAX,
            max(k, int(search_settings.HNSW_EF_SEARCH)),
            float(search_settings.HNSW_EF_SEARCH_PER_MILLION),
            str(int(search_settings.MAX_SCAN_TUPLES)),
        ],
    )


def _row_attributes(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(ATTRIBUTE_NAMES, row[-len(ATTRIBUTE_NAMES) :], strict=True))


def _exact_ranking_pays(cursor: Any, filters: SearchFilters) -> bool:
    """Whether ranking every product the filters leave costs less than an HNSW scan under them: when
    they leave at most EXACT_SEARCH_ALWAYS_UP_TO products, or at most EXACT_SEARCH_MAX_MATCHES that
    are at most EXACT_SEARCH_MAX_SHARE of the catalogue. An exact ranking costs a distance per product
    left; an HNSW scan visits about k / share index tuples before k pass, so under a broad filter it
    is the cheaper one. The products are counted through the filter columns' B-tree indexes, up to
    EXACT_SEARCH_MAX_MATCHES + 1; the catalogue's size is PostgreSQL's estimate."""
    most = int(search_settings.EXACT_SEARCH_MAX_MATCHES)
    where, params = filters.where_sql()
    cursor.execute(
        f"SELECT (SELECT count(*) FROM (SELECT 1 FROM catalog_product p WHERE {where} LIMIT {most + 1}) m),"
        " (SELECT reltuples FROM pg_class WHERE oid = 'catalog_product'::regclass)",
        params,
    )
    matches, catalogue = cursor.fetchone()
    if matches <= int(search_settings.EXACT_SEARCH_ALWAYS_UP_TO):
        return True
    return matches <= most and matches <= float(search_settings.EXACT_SEARCH_MAX_SHARE) * max(catalogue, 0)


def rank_by_vectors(
    *,
    version: ModelVersion,
    vectors: dict[str, np.ndarray],
    image_weight: float,
    k: int,
    filters: SearchFilters,
) -> list[Candidate]:
    """Products near the query vectors (one per kind searched), best first: ranking_sql under this
    transaction's HNSW scan options.

    Selective filters are ranked exactly over the products they leave (_exact_ranking_pays): an HNSW
    scan under them walks far through the graph, past MAX_SCAN_TUPLES on a large catalogue, and
    returns short pages of approximate neighbours. A broader filter whose HNSW scan still comes back
    short of k is ranked exactly too, so a page is full when the catalogue holds enough products.
    """
    kinds = [kind for kind in ("image", "text") if kind in vectors]
    query_vectors = {f"q_{kind}": vector_literal(vectors[kind]) for kind in kinds}

    def ranked(cursor: Any, *, exact: bool) -> list[Sequence[Any]]:
        sql, params = ranking_sql(
            version=version, kinds=kinds, image_weight=image_weight, k=k, filters=filters, exact=exact
        )
        cursor.execute(sql, {**params, **query_vectors})
        return cursor.fetchall()

    # On the replica when search_read chose it: set_config(..., true) is the transaction's own, on
    # whichever server runs it.
    connection = search_connection()
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        exact = filters.restricts and _exact_ranking_pays(cursor, filters)
        if not exact:
            _set_scan_options(cursor, k=k)
        rows = ranked(cursor, exact=exact)
        if not exact and filters.restricts and len(rows) < k:
            rows = ranked(cursor, exact=True)
    vector_ranking = []
    for row in rows:
        distances = dict(zip(kinds, row[2 : 2 + len(kinds)], strict=True))
        vector_ranking.append(
            Candidate(
                product_id=row[0],
                score=float(row[1]),
                image_similarity=None if distances.get("image") is None else 1 - float(distances["image"]),
                text_similarity=None if distances.get("text") is None else 1 - float(distances["text"]),
                attributes=_row_attributes(row),
            )
        )
    return vector_ranking


def fulltext_words(text: str) -> list[list[str]]:
    """fulltext_query_for's `words` for a text: each word its only alternative."""
    return [[word] for word in query_words(text)]


@dataclass(frozen=True)
class FulltextRanking:
    candidates: list[Candidate]
    # Matches read by the larger of fulltext_sql's draws (at most FULLTEXT_MAX_MATCHES + 1): at least
    # this many products match the query's words under the filters.
    matches_read: int


def fulltext_rows(sql: str, params: dict[str, Any]) -> list[tuple]:
    """The rows of fulltext_sql's statement, run as search runs it: in a transaction on the search
    database, after set_fulltext_scan_options (the benchmarks' raw floors run it so too)."""
    connection = search_connection()
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        set_fulltext_scan_options(cursor)
        cursor.execute(sql, params)
        return cursor.fetchall()


def fulltext_ranking(
    *, query: FulltextQuery | None, k: int, filters: SearchFilters, rank_function: str | None = None
) -> FulltextRanking:
    """Products whose search document matches the query's words (fulltext_query_for), best first
    (fulltext_sql); none, at no query, when the query has no word to match (`query` None)."""
    if query is None:
        return FulltextRanking([], matches_read=0)
    rows = fulltext_rows(*fulltext_sql(k=k, filters=filters, query=query, rank_function=rank_function))
    candidates = [
        Candidate(row[0], float(row[1]), None, None, _row_attributes(row), named_by_every_word=bool(row[2]))
        for row in rows
    ]
    return FulltextRanking(candidates, matches_read=int(rows[0][3]) if rows else 0)


def rank_by_fulltext(
    k: int,
    filters: SearchFilters,
    text: str = "",
    alternatives: Sequence[Sequence[str]] | None = None,
    rank_function: str | None = None,
) -> list[Candidate]:
    """fulltext_ranking's candidates for the words of `text`, or `alternatives`: per query word or
    phrase, what may stand for it (itself and its synonyms, search/synonyms.py)."""
    words = alternatives if alternatives is not None else fulltext_words(text)
    return fulltext_ranking(
        query=fulltext_query_for(words), k=k, filters=filters, rank_function=rank_function
    ).candidates


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Candidate]], *, k: int) -> list[Candidate]:
    """Fuse rankings by the sum of 1 / (k + rank) (rank from 1); ties by product id."""
    scores: dict[int, float] = {}
    first_seen: dict[int, Candidate] = {}
    for ranking in rankings:
        for rank, candidate in enumerate(ranking, start=1):
            scores[candidate.product_id] = scores.get(candidate.product_id, 0.0) + 1.0 / (k + rank)
            first_seen.setdefault(candidate.product_id, candidate)
    ordered = sorted(scores, key=lambda product_id: (-scores[product_id], product_id))
    return [
        Candidate(
            product_id=product_id,
            score=scores[product_id],
            image_similarity=first_seen[product_id].image_similarity,
            text_similarity=first_seen[product_id].text_similarity,
            attributes=first_seen[product_id].attributes,
        )
        for product_id in ordered
    ]


def every_word_matches_first(ranking: Sequence[Candidate], fulltext: Sequence[Candidate]) -> list[Candidate]:
    """The ranking with the products whose title and attributes hold every word of the query first,
    each group in its own order: what the shop wrote about a product outranks what the model sees."""
    named = {candidate.product_id for candidate in fulltext if candidate.named_by_every_word}
    if not named:
        return list(ranking)
    return [c for c in ranking if c.product_id in named] + [c for c in ranking if c.product_id not in named]
