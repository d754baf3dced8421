"""Facet counts of a search and the set of products they count over (its basis).

Each facet (search/filters.py FACETS) counts the products that pass every filter but its own: choosing
"Navy" keeps the other colours' counts, so a shopper can add "Blue" (a filter given twice means OR),
while the brand, category and gender counts narrow to navy products. This is the disjunctive faceting
shoppers know from shop search engines.

Over which products, said in the response as the basis:

- `all_matches`: every product the query matches under the filters, counted in SQL (facet_count_matches):
  a full-text query's matching set (`hybrid`: the products whose search document has any of the query's
  words or their synonyms) or a filter-only browse's (every active product under the filters).
- `candidates`: a similarity ranking has no matching set (every product matches with some score), so a
  vector query (`vector` mode, photo search, "more like this") counts over its FACET_CANDIDATES nearest
  products under the filters (facet_count_candidates); so does a hybrid query whose words match nothing
  (its results are by meaning alone), and one whose matching set is too large to count.

The cap: counting reads each product of the set it counts, so a query matching more than
FACET_MAX_MATCHES products (with at most one facet filter left off, the widest set a count needs) is
counted over the candidates instead, and the basis says why (`too_many_matches`). The count query
stops reading at the cap, so its cost is bounded whatever the catalogue's size.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from search.filters import FACETS
from search.ranking import Candidate, FulltextQuery, SearchFilters, set_fulltext_scan_options
from search.read_replica import search_connection

ALL_MATCHES = "all_matches"
CANDIDATES = "candidates"
BASIS_KINDS = (ALL_MATCHES, CANDIDATES)
# Why a search's facets count over candidates.
VECTOR_QUERY = "vector_query"
NO_WORD_MATCHES = "no_word_matches"
TOO_MANY_MATCHES = "too_many_matches"
CANDIDATE_REASONS = (VECTOR_QUERY, NO_WORD_MATCHES, TOO_MANY_MATCHES)

FacetValues = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class FacetBasis:
    """The products a search's facets count over."""

    kind: str  # ALL_MATCHES or CANDIDATES
    # Products counted over with every filter applied (a facet whose own filter is set counts over
    # the set without it, which may be larger).
    size: int
    # CANDIDATES only: why (CANDIDATE_REASONS); None for ALL_MATCHES.
    reason: str | None = None
    # TOO_MANY_MATCHES only: the cap the matching set went over (it has more products than this).
    matches_more_than: int | None = None


@dataclass(frozen=True)
class FacetCounts:
    facets: FacetValues
    basis: FacetBasis


def _facet_values(counts: dict[str, int], column: str) -> list[dict[str, Any]]:
    """One facet as the API lists it: most products first, then by value; blank values left out."""
    return [
        {"value": value, "count": count, "param": column}
        for value, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if value and count > 0
    ]


def _own_facet_filters(filters: SearchFilters) -> list[str]:
    """The facet columns the search filters on (their values selected in a facet)."""
    return [column for column in FACETS.values() if filters.values.get(column)]


def facet_matches_sql(
    *, filters: SearchFilters, words: FulltextQuery | None, hidden: Collection[int], cap: int
) -> tuple[str, dict[str, Any]]:
    """One query counting every facet over the products matching the query's words (`words`, as
    fulltext_sql takes them: its tsquery is a constant of the SQL, whose match count the planner
    estimates) or, with `words` None, the filters alone.

    The products read are those passing every filter but at most one facet filter (the union of what
    the facets count over), at most `cap + 1` of them: `scanned` > cap says the set was too large and
    the counts are not to be used. GROUPING SETS count each facet column in the same pass, each with
    the other facets' filters (`count(*) FILTER`), and `()` gives the products passing them all.
    """
    own = _own_facet_filters(filters)
    where, params = filters.without(*own).where_sql()
    passes: dict[str, str] = {}
    for column in own:
        condition, value_params = filters.value_condition(column)
        passes[column] = f"coalesce({condition}, false)"
        params.update(value_params)
    conditions = [where]
    if words is not None:
        conditions.append("p.search_document @@ %(facet_tsquery)s::tsquery")
        params["facet_tsquery"] = words.tsquery
    if hidden:
        conditions.append("p.id <> ALL(%(facet_hidden)s)")
        params["facet_hidden"] = sorted(hidden)
    if len(passes) > 1:
        failed = " + ".join(f"(NOT {condition})::int" for condition in passes.values())
        conditions.append(f"{failed} <= 1")
    columns = list(FACETS.values())
    selected = [f"p.{column}" for column in columns] + [f"{sql} AS passes_{c}" for c, sql in passes.items()]

    def passing(*columns_left_off: str) -> str:
        kept = [f"m.passes_{column}" for column in passes if column not in columns_left_off]
        return f"count(*) FILTER (WHERE {' AND '.join(kept)})" if kept else "count(*)"

    counts = [f"{passing(column)} AS for_{column}" for column in columns]
    grouping_sets = ", ".join(f"(m.{column})" for column in columns)
    sql = (
        "WITH matches AS MATERIALIZED (\n"
        f"  SELECT {', '.join(selected)}\n"
        "  FROM catalog_product p\n"
        f"  WHERE {' AND '.join(conditions)}\n"
        f"  LIMIT {int(cap) + 1}\n"
        ")\n"
        f"SELECT {', '.join(f'grouping(m.{column})' for column in columns)},\n"
        f"  {', '.join(f'm.{column}' for column in columns)},\n"
        f"  {', '.join(counts)}, {passing()} AS size, count(*) AS scanned\n"
        f"FROM matches m GROUP BY GROUPING SETS ({grouping_sets}, ())"
    )
    return sql, params


def facet_count_matches(
    *,
    filters: SearchFilters,
    words: FulltextQuery | None,
    hidden: Collection[int] = (),
    cap: int,
) -> FacetCounts | None:
    """Facet counts over every product the query matches under the filters (basis `all_matches`):
    the products whose search document has any of the words (`words`, the tsqueries the full-text
    ranking used: search.ranking.fulltext_query_for), or with `words` None every product under the
    filters (a filter-only browse). `hidden` products (merchandising) are not counted. None when more
    than `cap` products would have to be read: count over candidates instead."""
    sql, params = facet_matches_sql(filters=filters, words=words, hidden=hidden, cap=cap)
    connection = search_connection()
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if words is not None:
            set_fulltext_scan_options(cursor)  # the words' matches are read as the ranking reads them
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    columns = list(FACETS.values())
    width = len(columns)
    counts: dict[str, dict[str, int]] = {column: {} for column in columns}
    size = scanned = 0
    for row in rows:
        grouped = [index for index in range(width) if row[index] == 0]
        if not grouped:  # the grand total
            size, scanned = int(row[3 * width]), int(row[3 * width + 1])
            continue
        index = grouped[0]
        counts[columns[index]][row[width + index]] = int(row[2 * width + index])
    if scanned > cap:
        return None
    facets = {name: _facet_values(counts[column], column) for name, column in FACETS.items()}
    return FacetCounts(facets=facets, basis=FacetBasis(kind=ALL_MATCHES, size=size))


def products_newest_first(filters: SearchFilters, k: int) -> list[Candidate]:
    """The k products added last under the filters, newest first: a filter-only browse's candidates
    (nothing ranks its products), with the facet columns as their attributes."""
    where, params = filters.where_sql()
    columns = list(FACETS.values())
    with search_connection().cursor() as cursor:
        cursor.execute(
            f"SELECT p.id, {', '.join(f'p.{column}' for column in columns)} FROM catalog_product p"
            f" WHERE {where} ORDER BY p.id DESC LIMIT {int(k)}",
            params,
        )
        rows = cursor.fetchall()
    return [Candidate(row[0], 0.0, None, None, dict(zip(columns, row[1:], strict=True))) for row in rows]


def facet_count_candidates(
    *,
    filters: SearchFilters,
    nearest: Callable[[SearchFilters, int], Sequence[Candidate]],
    size: int,
    reason: str,
    ranked: Sequence[Candidate] | None = None,
    ranked_k: int = 0,
    hidden: Collection[int] = (),
    matches_more_than: int | None = None,
) -> FacetCounts:
    """Facet counts over the `size` products nearest to the query (basis `candidates`).

    `nearest(filters, k)` ranks the query's k nearest products under `filters`, best first (as
    rank_by_vectors does). `ranked` is that ranking under `filters` for `ranked_k`, when the search
    already has it: used when `ranked_k` covers `size` (and the hidden products), at no further
    query. A facet whose own filter is set needs a ranking without it: one query each. `hidden`
    products (merchandising) are not counted.
    """
    wanted = size + len(hidden)

    def pool(under: SearchFilters, ranking: Sequence[Candidate] | None = None) -> list[Candidate]:
        if ranking is None:
            ranking = nearest(under, wanted)
        return [candidate for candidate in ranking if candidate.product_id not in hidden][:size]

    base = pool(filters, ranked if ranked is not None and ranked_k >= wanted else None)
    own = set(_own_facet_filters(filters))
    facets: FacetValues = {}
    for name, column in FACETS.items():
        counted = pool(filters.without(column)) if column in own else base
        counts: dict[str, int] = {}
        for candidate in counted:
            value = candidate.attributes.get(column)
            if value:
                counts[value] = counts.get(value, 0) + 1
        facets[name] = _facet_values(counts, column)
    basis = FacetBasis(kind=CANDIDATES, size=len(base), reason=reason, matches_more_than=matches_more_than)
    return FacetCounts(facets=facets, basis=basis)
