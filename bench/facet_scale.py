"""Facet counts at a million products: the count query (search.facets.facet_matches_sql) against the
full-text ranking query it runs beside (search.ranking.fulltext_sql), on a synthetic catalogue. Both
take the query's tsqueries computed first (search.ranking.fulltext_query_for); the ranking's time
includes that round trip, as a search makes it once for both.

    .venv/bin/python bench/facet_scale.py [--products 1000000] [--repeats 5] [--no-write]

A million rows are generated in the session's own TEMP tables named `catalog_product` and
`catalog_productimage` (they hide the real tables for this session only, and are rolled back), so no
catalogue needs importing: eight article types, ten colours, 400 brands, five genders, and a search
document of the type's word, one of five materials and one of 997 rare words. Queries: a common word
(1 product in 8 or 5), a rare one, and common words under selective filters, each with the shipped
cap (PRODUCT_SEARCH_FACET_MAX_MATCHES) and with ten times it. Median of `--repeats` runs each.
The rows are narrower than real products (no titles, descriptions or attributes), so real reads
cost more per row on both sides; the ratio and the cap's effect are the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchmarks_file import markdown_table, write_section  # noqa: E402
from bench.django_setup import setup  # noqa: E402

CATALOGUE_SQL = """
CREATE TEMP TABLE catalog_product AS
SELECT g AS id, true AS is_active, 'S' || g AS sku, 'a product' AS title, 'INR'::text AS currency,
  (ARRAY['Shirts','Tshirts','Jeans','Kurtas','Tops','Shoes','Watches','Bags'])[1 + g %% 8] AS article_type,
  (ARRAY['Navy Blue','Red','Black','White','Green','Blue','Grey','Pink','Brown','Yellow'])[1 + (g * 7) %% 10]
    AS colour,
  'brand' || (g * 13) %% 400 AS brand,
  (ARRAY['Men','Women','Boys','Girls','Unisex'])[1 + (g * 3) %% 5] AS gender,
  'Apparel'::text AS master_category, 'Topwear'::text AS sub_category,
  (100 + g %% 5000)::numeric(12, 2) AS price,
  to_tsvector('english', (ARRAY['shirt','tshirt','jeans','kurta','top','shoe','watch','bag'])[1 + g %% 8]
    || ' ' || (ARRAY['cotton','linen','denim','silk','wool'])[1 + (g * 11) %% 5] || ' word' || (g %% 997))
    AS search_document
FROM generate_series(1, %s) g
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    arguments = parser.parse_args()
    setup(migrate=False)

    from django.db import connection, transaction

    from search.conf import search_settings
    from search.facets import facet_matches_sql
    from search.ranking import SearchFilters, fulltext_query_for, fulltext_sql, set_fulltext_scan_options

    cap = int(search_settings.FACET_MAX_MATCHES)
    red = {"colour": ("Red",)}
    cases = [
        ("`shirt` (1 product in 8)", "shirt", {}),
        ("`linen` (1 in 5)", "linen", {}),
        ("`word5` (1 in 997)", "word5", {}),
        ("`shirt`, colour Red", "shirt", red),
        ("`shirt`, colour Red, brand brand8 (no product)", "shirt", {**red, "brand": ("brand8",)}),
        ("`shirt`, colour Red, master category none", "shirt", {**red, "master_category": ("none",)}),
    ]

    def median_ms(run: Callable[[], list]) -> tuple[float, list]:
        times, rows = [], []
        for _ in range(arguments.repeats):
            started = time.perf_counter()
            rows = run()
            times.append((time.perf_counter() - started) * 1000)
        return float(np.median(times)), rows

    def fetched(sql: str, params: dict) -> list:
        cursor.execute(sql, params)
        return cursor.fetchall()

    def ranked(word: str, filters: SearchFilters) -> list:
        words = fulltext_query_for([[word]])
        assert words is not None
        set_fulltext_scan_options(cursor)
        return fetched(*fulltext_sql(k=50, filters=filters, query=words))

    rows = []
    load_before = os.getloadavg()[0]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(CATALOGUE_SQL, [arguments.products])
        cursor.execute("CREATE INDEX ON catalog_product USING gin (search_document)")
        cursor.execute(
            "CREATE TEMP TABLE catalog_productimage (id int, product_id int, image text, position int)"
        )
        cursor.execute("ANALYZE catalog_product")
        for label, word, values in cases:
            filters = SearchFilters(values=values)
            ranking_ms, _ = median_ms(lambda word=word, filters=filters: ranked(word, filters))
            row: list[object] = [label, f"{ranking_ms:.1f}"]
            words = fulltext_query_for([[word]])
            for limit in (cap, 10 * cap):
                sql, params = facet_matches_sql(filters=filters, words=words, hidden=(), cap=limit)
                facets_ms, result = median_ms(lambda sql=sql, params=params: fetched(sql, params))
                scanned = next(r[-1] for r in result if all(r[i] == 1 for i in range(4)))
                basis = "candidates" if scanned > limit else "all_matches"
                row += [f"{facets_ms:.1f}", f"{min(scanned, limit + 1):,} ({basis})"]
            rows.append(row)
        transaction.set_rollback(True)
    header = [
        "query",
        "full-text ranking ms",
        f"facets ms, cap {cap:,}",
        "rows read (basis)",
        f"facets ms, cap {10 * cap:,}",
        "rows read (basis)",
    ]
    table = markdown_table(header, rows)
    print(table)
    body = f"""## Facets at scale (`bench/facet_scale.py`)

The facet count query (every full-text match, each facet under the other facets' filters; search/facets.py)
beside hybrid search's full-text ranking query, on a synthetic catalogue of {arguments.products:,}
products in the session's TEMP tables (narrow rows: the ratio and the cap's effect are the figures),
median of {arguments.repeats} runs. With more matches than the cap the count stops reading at the cap
and the search counts over its nearest candidates instead (basis `candidates`).

{table}

Machine: {os.cpu_count()} CPU cores, 1-minute load average {load_before:.1f} before the run and
{os.getloadavg()[0]:.1f} after it.
"""
    if not arguments.no_write:
        write_section("facet-scale", body)
        print("Wrote the facet-scale section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
