"""Reads of the search log for the admin's report: top queries with their click-through and latency,
queries that found nothing, and latency per day.

Text searches only, except latency per day (every kind). A "search" is a first page (offset 0); later
pages of the same query count as pages. Click-through is the share of pages served with at least one
click on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection

from search.models import SearchEvent, SearchLog


@dataclass(frozen=True)
class QueryRow:
    query: str
    searches: int
    pages: int
    zero_result_searches: int
    clicks: int
    add_to_carts: int
    click_through: float  # share of pages with at least one click
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class ZeroResultRow:
    query: str
    searches: int
    last_searched_at: datetime


@dataclass(frozen=True)
class LatencyRow:
    day: date
    requests: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class AnalyticsTotals:
    searches: int
    pages: int
    clicks: int
    add_to_carts: int


def _rows(sql: str, params: dict[str, Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


QUERY_REPORT_SQL = """
WITH pages AS (
  SELECT l.id, l.normalized_query, l."offset", l.result_count, l.relaxed, l.latency_ms,
    (SELECT count(*) FROM search_searchevent e WHERE e.search_id = l.id AND e.kind = 'click') AS clicks,
    (SELECT count(*) FROM search_searchevent e WHERE e.search_id = l.id AND e.kind = 'add_to_cart') AS carts
  FROM search_searchlog l
  WHERE l.kind = 'text' AND l.created_at >= %(since)s
)
SELECT normalized_query,
  count(*) FILTER (WHERE "offset" = 0) AS searches,
  count(*) AS pages,
  count(*) FILTER (WHERE "offset" = 0 AND (result_count = 0 OR relaxed <> '[]'::jsonb)) AS zero_results,
  sum(clicks) AS clicks,
  sum(carts) AS carts,
  avg((clicks > 0)::int) AS click_through,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
  percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95
FROM pages
GROUP BY normalized_query
ORDER BY {order}, normalized_query
LIMIT %(limit)s
"""
QUERY_REPORT_ORDERS = {"searches": "searches DESC", "click_through": "click_through ASC, searches DESC"}


def report_queries(*, since: datetime, limit: int = 25, order: str = "searches") -> list[QueryRow]:
    """The most searched queries (or those clicked least, `order="click_through"`) since `since`."""
    sql = QUERY_REPORT_SQL.format(order=QUERY_REPORT_ORDERS[order])
    return [
        QueryRow(
            query=row[0],
            searches=row[1],
            pages=row[2],
            zero_result_searches=row[3],
            clicks=int(row[4] or 0),
            add_to_carts=int(row[5] or 0),
            click_through=float(row[6] or 0),
            p50_ms=float(row[7]),
            p95_ms=float(row[8]),
        )
        for row in _rows(sql, {"since": since, "limit": limit})
    ]


def report_zero_result_queries(*, since: datetime, limit: int = 25) -> list[ZeroResultRow]:
    """Queries whose first page found nothing as asked: no results, or results only once the search
    relaxed its filters or words (no dead end for the shopper, a gap in the catalogue for the shop)."""
    rows = _rows(
        """
        SELECT normalized_query, count(*), max(created_at) FROM search_searchlog
        WHERE kind = 'text' AND "offset" = 0 AND (result_count = 0 OR relaxed <> '[]'::jsonb)
          AND created_at >= %(since)s
        GROUP BY normalized_query ORDER BY count(*) DESC, normalized_query LIMIT %(limit)s
        """,
        {"since": since, "limit": limit},
    )
    return [ZeroResultRow(query=row[0], searches=row[1], last_searched_at=row[2]) for row in rows]


def report_latency_by_day(*, since: datetime) -> list[LatencyRow]:
    """Every answered search request per day (UTC), with the API view's p50 and p95 time."""
    rows = _rows(
        """
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*),
          percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
          percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
        FROM search_searchlog WHERE created_at >= %(since)s GROUP BY day ORDER BY day DESC
        """,
        {"since": since},
    )
    return [
        LatencyRow(day=row[0], requests=row[1], p50_ms=float(row[2]), p95_ms=float(row[3])) for row in rows
    ]


def report_totals(*, since: datetime) -> AnalyticsTotals:
    logs = SearchLog.objects.filter(created_at__gte=since, kind=SearchLog.Kind.TEXT)
    events = SearchEvent.objects.filter(search__created_at__gte=since)
    return AnalyticsTotals(
        searches=logs.filter(offset=0).count(),
        pages=logs.count(),
        clicks=events.filter(kind=SearchEvent.Kind.CLICK).count(),
        add_to_carts=events.filter(kind=SearchEvent.Kind.ADD_TO_CART).count(),
    )
